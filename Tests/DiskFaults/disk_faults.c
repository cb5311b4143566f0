// A simulated small or read-only disk, for the tests of full and read-only run folders
// (Tests/PretextCLITests/BadInputTests.swift) on any machine: mounting a tmpfs needs
// privileges that an unprivileged container or CI runner lacks.
//
// Loaded into `pretext` with LD_PRELOAD, it makes one folder behave like its own disk:
//   PRETEXT_FAULT_DISK           the folder (an absolute path, no symlinks in it)
//   PRETEXT_FAULT_DISK_BYTES     its capacity: statvfs reports capacity − the bytes of the
//                                files in it as free, and a write that would go beyond
//                                the capacity fails with ENOSPC, writing nothing (and so
//                                does reserving space past it)
//   PRETEXT_FAULT_DISK_READONLY  1: opening a file in it for writing, creating a file or
//                                a folder fails with EROFS
// Everything outside the folder goes to the C library unchanged. Paths are compared
// resolved (symlinks, `..`), by the deepest part of them that exists.
//
// Interposed: the open family (open, open64, openat, openat64, the fortified __open_2 and
// __open64_2, creat, creat64, fopen, fopen64, mkstemp, mkostemp), mkdir and mkdirat,
// rename, renameat, unlink, unlinkat, rmdir; write, pwrite, pwrite64, writev;
// posix_fallocate and posix_fallocate64 (space reserved for a memory-mapped file, whose
// stores the shim cannot see); statvfs and statvfs64. Calls the C library makes to itself (stdio's buffered writes) are not
// seen: Pretext writes its files with open and write.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

static const char *disk;
static size_t disk_length;
static long long capacity = -1;
static int read_only;

__attribute__((constructor)) static void read_settings(void) {
  disk = getenv("PRETEXT_FAULT_DISK");
  if (disk) disk_length = strlen(disk);
  const char *bytes = getenv("PRETEXT_FAULT_DISK_BYTES");
  if (bytes) capacity = atoll(bytes);
  const char *ro = getenv("PRETEXT_FAULT_DISK_READONLY");
  read_only = ro && strcmp(ro, "1") == 0;
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

// `path` resolved: realpath of its deepest existing ancestor, with the rest appended.
static void resolve(const char *path, char *out) {
  char head[PATH_MAX];
  snprintf(head, sizeof head, "%s", path);
  char tail[PATH_MAX] = "";
  for (;;) {
    char real[PATH_MAX];
    if (realpath(head, real)) {
      snprintf(out, PATH_MAX, "%s%s", real, tail);
      return;
    }
    char *slash = strrchr(head, '/');
    if (!slash || slash == head) {
      snprintf(out, PATH_MAX, "%s", path);
      return;
    }
    char rest[PATH_MAX];
    snprintf(rest, sizeof rest, "%s%s", slash, tail);
    snprintf(tail, sizeof tail, "%s", rest);
    *slash = 0;
  }
}

// Whether `path` (absolute, or relative to the folder `dirfd` or the working folder) is
// the disk's folder or inside it.
static int on_disk_at(int dirfd, const char *path) {
  if (!disk || !path) return 0;
  char full[PATH_MAX];
  if (path[0] == '/') {
    snprintf(full, sizeof full, "%s", path);
  } else {
    char base[PATH_MAX];
    if (dirfd == AT_FDCWD) {
      if (!getcwd(base, sizeof base)) return 0;
    } else {
      char link[64];
      snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
      ssize_t n = readlink(link, base, sizeof base - 1);
      if (n < 0) return 0;
      base[n] = 0;
    }
    snprintf(full, sizeof full, "%s/%s", base, path);
  }
  char resolved[PATH_MAX];
  resolve(full, resolved);
  return strncmp(resolved, disk, disk_length) == 0 && (resolved[disk_length] == 0 || resolved[disk_length] == '/');
}

static int fd_on_disk(int fd) {
  if (!disk) return 0;
  char link[64], target[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n < 0) return 0;
  target[n] = 0;
  return on_disk_at(AT_FDCWD, target);
}

// nftw has no user pointer: the sum is a global, guarded by a lock.
static long long used_bytes;
static pthread_mutex_t usage_lock = PTHREAD_MUTEX_INITIALIZER;
static int add_size(const char *path, const struct stat *st, int type, struct FTW *ftw) {
  (void)path, (void)ftw;
  if (type == FTW_F) used_bytes += st->st_size;
  return 0;
}

// Bytes of the regular files in the disk's folder.
static long long usage(void) {
  pthread_mutex_lock(&usage_lock);
  used_bytes = 0;
  nftw(disk, add_size, 16, FTW_PHYS);
  long long total = used_bytes;
  pthread_mutex_unlock(&usage_lock);
  return total;
}

static int refuse(int error) {
  errno = error;
  return -1;
}

static int writes_or_creates(int flags) { return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0; }

// Whether open's variadic mode argument was passed (glibc's rule: O_TMPFILE includes
// the O_DIRECTORY bit, so it must match whole).
static int has_mode(int flags) { return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE; }

static int checked_open(int dirfd, const char *path, int flags, mode_t mode) {
  if (read_only && writes_or_creates(flags) && on_disk_at(dirfd, path)) return refuse(EROFS);
  return REAL(openat)(dirfd, path, flags, mode);
}

int open(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = has_mode(flags) ? (mode_t)va_arg(ap, int) : 0;
  va_end(ap);
  return checked_open(AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = has_mode(flags) ? (mode_t)va_arg(ap, int) : 0;
  va_end(ap);
  return checked_open(AT_FDCWD, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = has_mode(flags) ? (mode_t)va_arg(ap, int) : 0;
  va_end(ap);
  return checked_open(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = has_mode(flags) ? (mode_t)va_arg(ap, int) : 0;
  va_end(ap);
  return checked_open(dirfd, path, flags, mode);
}

int __open_2(const char *path, int flags) { return checked_open(AT_FDCWD, path, flags, 0); }
int __open64_2(const char *path, int flags) { return checked_open(AT_FDCWD, path, flags, 0); }
int creat(const char *path, mode_t mode) { return checked_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode); }
int creat64(const char *path, mode_t mode) { return checked_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode); }

// Any mode but plain reading writes or creates.
static int fopen_writes(const char *mode) { return mode && (mode[0] != 'r' || strchr(mode, '+')); }

static int refuses_fopen(const char *path, const char *mode) {
  if (!(read_only && fopen_writes(mode) && on_disk_at(AT_FDCWD, path))) return 0;
  errno = EROFS;
  return 1;
}

FILE *fopen(const char *path, const char *mode) { return refuses_fopen(path, mode) ? NULL : REAL(fopen)(path, mode); }
FILE *fopen64(const char *path, const char *mode) { return refuses_fopen(path, mode) ? NULL : REAL(fopen64)(path, mode); }

int mkstemp(char *template) {
  if (read_only && on_disk_at(AT_FDCWD, template)) return refuse(EROFS);
  return REAL(mkstemp)(template);
}

int mkostemp(char *template, int flags) {
  if (read_only && on_disk_at(AT_FDCWD, template)) return refuse(EROFS);
  return REAL(mkostemp)(template, flags);
}

int rename(const char *from, const char *to) {
  if (read_only && (on_disk_at(AT_FDCWD, from) || on_disk_at(AT_FDCWD, to))) return refuse(EROFS);
  return REAL(rename)(from, to);
}

int renameat(int fromfd, const char *from, int tofd, const char *to) {
  if (read_only && (on_disk_at(fromfd, from) || on_disk_at(tofd, to))) return refuse(EROFS);
  return REAL(renameat)(fromfd, from, tofd, to);
}

int unlink(const char *path) {
  if (read_only && on_disk_at(AT_FDCWD, path)) return refuse(EROFS);
  return REAL(unlink)(path);
}

int unlinkat(int dirfd, const char *path, int flags) {
  if (read_only && on_disk_at(dirfd, path)) return refuse(EROFS);
  return REAL(unlinkat)(dirfd, path, flags);
}

int rmdir(const char *path) {
  if (read_only && on_disk_at(AT_FDCWD, path)) return refuse(EROFS);
  return REAL(rmdir)(path);
}

int mkdir(const char *path, mode_t mode) {
  if (read_only && on_disk_at(AT_FDCWD, path)) return refuse(EROFS);
  return REAL(mkdir)(path, mode);
}

int mkdirat(int dirfd, const char *path, mode_t mode) {
  if (read_only && on_disk_at(dirfd, path)) return refuse(EROFS);
  return REAL(mkdirat)(dirfd, path, mode);
}

// A write that would take the disk past its capacity writes nothing (ENOSPC).
static int would_overflow(int fd, size_t count) {
  return capacity >= 0 && count > 0 && fd_on_disk(fd) && usage() + (long long)count > capacity;
}

ssize_t write(int fd, const void *buffer, size_t count) {
  if (would_overflow(fd, count)) return refuse(ENOSPC);
  return REAL(write)(fd, buffer, count);
}

ssize_t pwrite(int fd, const void *buffer, size_t count, off_t offset) {
  if (would_overflow(fd, count)) return refuse(ENOSPC);
  return REAL(pwrite)(fd, buffer, count, offset);
}

ssize_t pwrite64(int fd, const void *buffer, size_t count, off64_t offset) {
  if (would_overflow(fd, count)) return refuse(ENOSPC);
  return REAL(pwrite64)(fd, buffer, count, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int n) {
  size_t count = 0;
  for (int i = 0; i < n; i++) count += iov[i].iov_len;
  if (would_overflow(fd, count)) return refuse(ENOSPC);
  return REAL(writev)(fd, iov, n);
}

// Reserving space past the capacity fails the way a full disk does (the return value
// is the error number, as POSIX specifies for posix_fallocate).
static int reserve_overflows(int fd, off_t offset, off_t length) {
  struct stat st;
  if (capacity < 0 || !fd_on_disk(fd) || fstat(fd, &st) != 0) return 0;
  long long grow = (long long)offset + (long long)length - (long long)st.st_size;
  return grow > 0 && usage() + grow > capacity;
}

int posix_fallocate(int fd, off_t offset, off_t length) {
  if (reserve_overflows(fd, offset, length)) return ENOSPC;
  return REAL(posix_fallocate)(fd, offset, length);
}

int posix_fallocate64(int fd, off64_t offset, off64_t length) {
  if (reserve_overflows(fd, offset, length)) return ENOSPC;
  return REAL(posix_fallocate64)(fd, offset, length);
}

// The disk's size and free room, in 4 KiB blocks.
static void describe(struct statvfs *out) {
  long long free_bytes = capacity - usage();
  if (free_bytes < 0) free_bytes = 0;
  out->f_bsize = out->f_frsize = 4096;
  out->f_blocks = (fsblkcnt_t)(capacity / 4096);
  out->f_bfree = out->f_bavail = (fsblkcnt_t)(free_bytes / 4096);
}

int statvfs(const char *path, struct statvfs *out) {
  int r = REAL(statvfs)(path, out);
  if (r == 0 && capacity >= 0 && on_disk_at(AT_FDCWD, path)) describe(out);
  return r;
}

int statvfs64(const char *path, struct statvfs64 *out) {
  int r = REAL(statvfs64)(path, out);
  if (r == 0 && capacity >= 0 && on_disk_at(AT_FDCWD, path)) describe((struct statvfs *)out);
  return r;
}
