// No API: the library acts by interposing C library calls when it is loaded with
// LD_PRELOAD. Its settings are environment variables, listed in disk_faults.c.
