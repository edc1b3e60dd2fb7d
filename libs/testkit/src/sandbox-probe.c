/*
 * What a tenant's root tries inside a machine or a build step, to show the sandbox holds. Built
 * static by the tests (see sandbox-probe.ts), so it runs in any image, and it makes the raw
 * syscalls, so a missing tool (the node base image has no mount, mknod or unshare) cannot pass for
 * a refusal. Prints one JSON line: each call's errno name ("OK" when it succeeded), CapEff and
 * Seccomp from /proc/self/status, how many processes /proc shows and the name of pid 1.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static const char *result(long r) {
  static char other[32];
  if (r == 0) return "OK";
  switch (errno) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOSYS: return "ENOSYS";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    default: snprintf(other, sizeof other, "errno%d", errno); return other;
  }
}

static void status_field(const char *name, char *out, size_t size) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  size_t len = strlen(name);
  out[0] = 0;
  if (!f) return;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, name, len) == 0 && line[len] == ':') {
      char *v = line + len + 1;
      while (*v == ' ' || *v == '\t') v++;
      v[strcspn(v, "\n")] = 0;
      snprintf(out, size, "%s", v);
    }
  }
  fclose(f);
}

int main(void) {
  char cap[64], seccomp[16], pid1[64] = "";
  unlink("/tmp/hangar-probe-dev");
  mkdir("/tmp/hangar-probe-mnt", 0755);
  const char *mknod_r = result(mknod("/tmp/hangar-probe-dev", S_IFCHR | 0600, makedev(1, 3)));
  const char *mount_r = result(mount("none", "/tmp/hangar-probe-mnt", "tmpfs", 0, NULL));
  char image[64] = {0};
  const char *module_r = result(syscall(SYS_init_module, image, sizeof image, ""));
  const char *unshare_r = result(unshare(CLONE_NEWUSER));
  status_field("CapEff", cap, sizeof cap);
  status_field("Seccomp", seccomp, sizeof seccomp);
  int processes = 0;
  DIR *d = opendir("/proc");
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9') processes++;
  }
  if (d) closedir(d);
  FILE *c = fopen("/proc/1/comm", "r");
  if (c) {
    if (fgets(pid1, sizeof pid1, c)) pid1[strcspn(pid1, "\n")] = 0;
    fclose(c);
  }
  printf("{\"mknod\":\"%s\",\"mount\":\"%s\",\"init_module\":\"%s\",\"unshare_user\":\"%s\","
         "\"CapEff\":\"%s\",\"Seccomp\":\"%s\",\"processes\":\"%d\",\"pid1\":\"%s\"}\n",
         mknod_r, mount_r, module_r, unshare_r, cap, seccomp, processes, pid1);
  return 0;
}
