/*
 * hangar-wrapper: the leader of every machine's process group (see src/driver/wrapper.ts).
 *
 *   hangar-wrapper <exit file> <argv...>
 *
 * Joins the machine's cgroups (HANGAR_CGROUP_PROCS), keeps itself out of the OOM killer's reach,
 * forks and execs the argv with default signal dispositions, tells the driver the app's pid on fd 3,
 * waits, writes the raw wait status to the exit file (tmp + rename) and SIGKILLs its whole group.
 * Built static by the host agent with the host's C compiler, so that no interpreter starts per machine.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define CGROUP_ENV "HANGAR_CGROUP_PROCS"
#define OOM_SCORE_ADJ_ENV "HANGAR_APP_OOM_SCORE_ADJ"

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("hangar wrapper: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(255);
}

/* Whether the whole string is an optional '-' and digits. */
static int is_number(const char *s) {
  if (*s == '-') s++;
  if (*s == '\0') return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

/* Writes `text` to `path` (made if missing) in one write; 0 on success, else -1 with errno set. */
static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  size_t len = strlen(text);
  ssize_t n = write(fd, text, len);
  int saved = errno;
  close(fd);
  errno = saved;
  return n == (ssize_t)len ? 0 : -1;
}

static int oom_score_adj(const char *value) {
  char line[32];
  snprintf(line, sizeof line, "%s\n", value);
  return write_file("/proc/self/oom_score_adj", line) == 0;
}

/* Signals whose default does not terminate, that cannot be caught, or that stop: left at their default. */
static int keeps_default(int sig) {
  switch (sig) {
    case SIGKILL: case SIGSTOP: case SIGCHLD: case SIGCONT: case SIGURG: case SIGWINCH:
    case SIGTSTP: case SIGTTIN: case SIGTTOU:
    /* A fault in the wrapper itself must kill it, not return to the faulting instruction for ever. */
    case SIGSEGV: case SIGBUS: case SIGILL: case SIGFPE:
      return 1;
    default:
      return 0;
  }
}

static void ignore_signal(int sig) { (void)sig; }

/* Sets every terminating signal's action to `handler` (the no-op handler, or SIG_DFL). */
static void set_caught(void (*handler)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  for (int sig = 1; sig < NSIG; sig++) {
    if (keeps_default(sig)) continue;
    /* The C library's own real-time signals refuse a handler: nothing to do for them. */
    sigaction(sig, &sa, NULL);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) die("usage: hangar-wrapper <exit file> <argv...>");
  const char *exit_file = argv[1];
  char **cmd = argv + 2;

  char *procs = getenv(CGROUP_ENV);
  procs = procs ? strdup(procs) : NULL;
  unsetenv(CGROUP_ENV);
  char *adj_env = getenv(OOM_SCORE_ADJ_ENV);
  const char *child_adj = adj_env && *adj_env ? strdup(adj_env) : "0";
  unsetenv(OOM_SCORE_ADJ_ENV);
  if (!is_number(child_adj)) die("%s=%s is not a number", OOM_SCORE_ADJ_ENV, child_adj);

  int protected_ = oom_score_adj("-1000");
  char self[32];
  snprintf(self, sizeof self, "%d\n", (int)getpid());
  for (char *save = NULL, *file = procs ? strtok_r(procs, ":", &save) : NULL; file;
       file = strtok_r(NULL, ":", &save)) {
    if (write_file(file, self) != 0) die("joining the cgroup %s: %s", file, strerror(errno));
  }

  set_caught(ignore_signal);
  sigset_t all, mask;
  sigfillset(&all);
  if (sigprocmask(SIG_BLOCK, &all, &mask) != 0) die("sigprocmask: %s", strerror(errno));
  pid_t pid = fork();
  if (pid < 0) die("fork: %s", strerror(errno));
  if (pid == 0) {
    set_caught(SIG_DFL);
    close(3);
    if (protected_ && !oom_score_adj(child_adj)) {
      fprintf(stderr, "hangar wrapper: oom_score_adj %s: %s\n", child_adj, strerror(errno));
      _exit(127);
    }
    sigprocmask(SIG_SETMASK, &mask, NULL);
    execvp(cmd[0], cmd);
    fprintf(stderr, "hangar wrapper: exec %s: %s\n", cmd[0], strerror(errno));
    _exit(127);
  }
  sigprocmask(SIG_SETMASK, &mask, NULL);
  if (fcntl(3, F_GETFD) != -1) {
    char line[32];
    int len = snprintf(line, sizeof line, "%d\n", (int)pid);
    ssize_t ignored = write(3, line, (size_t)len);
    (void)ignored;
    close(3);
  }

  int status;
  pid_t got;
  do got = waitpid(pid, &status, 0);
  while (got < 0 && errno == EINTR);
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", exit_file) >= (int)sizeof tmp) die("%s: name too long", exit_file);
  FILE *out = fopen(tmp, "w");
  if (!out) die("%s: %s", tmp, strerror(errno));
  fprintf(out, "%d\n", got == pid ? status : -1);
  if (fclose(out) != 0) die("%s: %s", tmp, strerror(errno));
  if (rename(tmp, exit_file) != 0) die("%s: %s", exit_file, strerror(errno));
  kill(-getpid(), SIGKILL);
  return 0;
}
