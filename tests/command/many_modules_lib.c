/* many_modules_lib: one library, copied under many names (each copy a module of its own). */
#include <stdlib.h>

void *make(void)
{
	return malloc(24); /* MAKE-MALLOC */
}
