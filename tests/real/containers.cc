// containers.cc — a deterministic std-container workload whose output must not change under heapguard.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

static uint64_t state = 88172645463325252ull;

static uint64_t next_random()
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

static std::string random_word()
{
	std::string w;
	size_t n = 1 + next_random() % 40;

	for (size_t i = 0; i < n; i++)
		w += char('a' + next_random() % 26);
	return w;
}

int main()
{
	std::map<std::string, std::vector<int>> index;
	std::unordered_map<uint64_t, std::string> by_number;
	std::vector<std::unique_ptr<std::string>> owned;
	uint64_t checksum = 0;

	for (int round = 0; round < 12; round++) {
		for (int i = 0; i < 10000; i++) {
			std::string w = random_word();

			index[w].push_back(i);
			by_number[next_random() % 50000] = w + w;
			if (i % 7 == 0)
				owned.push_back(std::make_unique<std::string>(w, 0, w.size() / 2));
		}
		// drop a third of everything so memory is reused, not just grown
		for (auto it = index.begin(); it != index.end();)
			it = it->first.size() % 3 == 0 ? index.erase(it) : std::next(it);
		for (auto it = by_number.begin(); it != by_number.end();)
			it = it->first % 3 == 0 ? by_number.erase(it) : std::next(it);
		owned.erase(owned.begin(), owned.begin() + long(owned.size() / 3));
		std::vector<std::string> keys;
		for (const auto &kv : index)
			keys.push_back(kv.first);
		std::sort(keys.begin(), keys.end(), [](const std::string &a, const std::string &b) {
			return a.size() != b.size() ? a.size() < b.size() : a < b;
		});
		for (const auto &k : keys)
			checksum = checksum * 1000003 + k.size() + uint64_t(index[k].size());
		printf("round %d: %zu words, %zu numbers, %zu owned, first %s, last %s, checksum %016llx\n", round,
		       index.size(), by_number.size(), owned.size(), keys.front().c_str(), keys.back().c_str(),
		       (unsigned long long)checksum);
	}
	return 0;
}
