/*
 * Syscall probe for the security tests: each argument names one attempt;
 * for each, prints "<name>=ok" or "<name>=<errno name>". Built static with
 * gcc by probe.ts so it runs in any test rootfs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *ename(int e) {
  switch (e) {
  case EPERM: return "EPERM";
  case ENOENT: return "ENOENT";
  case EACCES: return "EACCES";
  case EINVAL: return "EINVAL";
  case ENOSYS: return "ENOSYS";
  case ECONNREFUSED: return "ECONNREFUSED";
  case EAFNOSUPPORT: return "EAFNOSUPPORT";
  default: return "EOTHER";
  }
}

static void report(const char *name, long rc) {
  if (rc < 0) printf("%s=%s\n", name, ename(errno));
  else printf("%s=ok\n", name);
}

/* clone() with namespace flags through the raw syscall: the child exits at once. */
static long clone_newuser(void) {
  long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
  if (pid == 0) _exit(0);
  if (pid > 0) waitpid((pid_t)pid, 0, 0);
  return pid;
}

static long connect_abstract(const char *name) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  size_t n = strlen(name);
  if (n > sizeof a.sun_path - 1) n = sizeof a.sun_path - 1;
  memcpy(a.sun_path + 1, name, n);
  /* the whole zero-padded sun_path, as libuv (Node's net.Server) binds abstract names */
  long rc = connect(fd, (struct sockaddr *)&a, (socklen_t)sizeof a);
  int saved = errno;
  close(fd);
  errno = saved;
  return rc;
}

int main(int argc, char **argv) {
  setvbuf(stdout, 0, _IOLBF, 0);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "unshare-user")) report(a, unshare(CLONE_NEWUSER));
    else if (!strcmp(a, "unshare-mount")) report(a, unshare(CLONE_NEWNS));
    else if (!strcmp(a, "unshare-net")) report(a, unshare(CLONE_NEWNET));
    else if (!strcmp(a, "clone-newuser")) report(a, clone_newuser());
    else if (!strcmp(a, "mount-tmpfs")) report(a, mount("none", "/tmp", "tmpfs", 0, 0));
    else if (!strcmp(a, "add_key")) report(a, syscall(SYS_add_key, "user", "kiln-probe", "x", 1, -2 /* KEY_SPEC_PROCESS_KEYRING */));
    else if (!strcmp(a, "keyctl")) report(a, syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -2, 1));
    else if (!strcmp(a, "request_key")) report(a, syscall(SYS_request_key, "user", "kiln-probe", 0, 0));
    else if (!strcmp(a, "personality-query")) report(a, personality(0xffffffff));
    else if (!strcmp(a, "personality-linux32")) report(a, personality(PER_LINUX32));
    else if (!strcmp(a, "personality-norandom")) report(a, personality(ADDR_NO_RANDOMIZE));
    else if (!strcmp(a, "userfaultfd")) report(a, syscall(SYS_userfaultfd, 0));
    else if (!strcmp(a, "bpf")) report(a, syscall(SYS_bpf, 0, 0, 0));
    else if (!strcmp(a, "socket-vsock")) report(a, socket(40 /* AF_VSOCK */, SOCK_STREAM, 0));
    else if (!strcmp(a, "socket-alg")) report(a, socket(38 /* AF_ALG */, SOCK_SEQPACKET, 0));
    else if (!strcmp(a, "socket-inet")) report(a, socket(AF_INET, SOCK_STREAM, 0));
    else if (!strcmp(a, "fork")) {
      pid_t p = fork();
      if (p == 0) _exit(0);
      if (p > 0) waitpid(p, 0, 0);
      report(a, p);
    } else if (!strncmp(a, "connect-abstract:", 17)) report("connect-abstract", connect_abstract(a + 17));
    else printf("%s=unknown\n", a);
  }
  return 0;
}
