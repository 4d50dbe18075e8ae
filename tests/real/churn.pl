# churn.pl — deterministic hash and string churn, compared with and without heapguard.
use strict;
use warnings;

my $x = 88172645463325252;
sub next_random { $x = (1103515245 * $x + 12345) % 2147483648; return $x; }

my %h;
my @keep;
for my $round (0 .. 7) {
    for my $i (0 .. 40000) {
        my $n = next_random();
        my $w = join '', map { chr(97 + ($n >> $_) % 26) } 0 .. (3 + $n % 12);
        $h{$w} .= substr($w, 0, 2);
        push @keep, $w x (1 + $n % 5);
    }
    # drop about half the keys and entries so freed memory gets reused
    delete $h{$_} for grep { length($h{$_}) % 4 == 0 } keys %h;
    splice @keep, 0, int(@keep / 2);
    my $sum = 0;
    $sum = ($sum * 31 + length($h{$_})) % 1000000007 for sort keys %h;
    printf "%d %d %d %d\n", $round, scalar(keys %h), scalar(@keep), $sum;
}
my @sorted = sort { length($a) <=> length($b) or $a cmp $b } @keep;
print "$sorted[0] $sorted[-1]\n";
