// The native side of elfload's run-from-memory tests: runs a file from a memfd by fexecve, as the
// kernel runs it, or hands the same memfd (or a stream carrying the file) to another program.
//
//   fexec [-n NAME] [-k] FILE ARGV...         memfd NAME (default "prog") holding FILE, close-on-exec
//                                             unless -k; fexecve(memfd, ARGV)
//   fexec -x PROG [-n NAME] [-k] FILE ARGV... the same memfd, but execv(PROG, ARGV): elfload --fd
//   fexec -f [-p] [-k] [-x PROG] FILE ARGV... FILE itself, opened read-only (-p: O_PATH), not a memfd
//   fexec -s pipe|socket|file [-t TAIL] [-o] FILE PROG ARGV...
//                                             standard input carries FILE's bytes, then TAIL; -o keeps
//                                             the stream open after them (the writer waits until the
//                                             program is gone); execv(PROG, ARGV): elfload -
//   fexec -s pipe|socket -d MS ...            the same, but standard input non-blocking (as a parent
//                                             may leave it) and FILE written only after MS milliseconds
//
// In ARGV, "{fd}" becomes the memfd's number and "{path}" /dev/fd/N.
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void die(const char *what) {
  perror(what);
  exit(125);
}

static char *slurp(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(path);
  struct stat st;
  if (fstat(fd, &st) < 0) die("fstat");
  char *buf = malloc(st.st_size + 1);
  size_t n = 0;
  while (n < (size_t)st.st_size) {
    ssize_t r = read(fd, buf + n, st.st_size - n);
    if (r <= 0) die("read");
    n += r;
  }
  close(fd);
  *len = n;
  return buf;
}

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) return;  // the reader is gone: what it did not take is its business
    p += w;
    n -= w;
  }
}

int main(int argc, char **argv) {
  const char *name = "prog", *exec_path = NULL, *stream = NULL, *tail = "";
  int keep = 0, stay_open = 0, open_file = 0, path_only = 0, delay_ms = -1, opt;
  while ((opt = getopt(argc, argv, "+n:kx:s:t:ofpd:")) != -1) {
    switch (opt) {
    case 'n': name = optarg; break;
    case 'k': keep = 1; break;
    case 'x': exec_path = optarg; break;
    case 's': stream = optarg; break;
    case 't': tail = optarg; break;
    case 'o': stay_open = 1; break;
    case 'f': open_file = 1; break;
    case 'p': path_only = 1; break;
    case 'd': delay_ms = atoi(optarg); break;
    default: fprintf(stderr, "usage: see Samples/fexec.c\n"); return 125;
    }
  }
  if (argc - optind < 2) {
    fprintf(stderr, "usage: see Samples/fexec.c\n");
    return 125;
  }
  size_t len;
  char *bytes = slurp(argv[optind], &len);
  char **args = argv + optind + 1;

  if (stream) {
    int fds[2];
    if (strcmp(stream, "file") == 0) {
      // An unnamed file: a regular file for standard input, and nothing left behind.
      int fd = open(P_tmpdir, O_TMPFILE | O_RDWR, 0600);
      if (fd < 0) die("O_TMPFILE");
      write_all(fd, bytes, len);
      write_all(fd, tail, strlen(tail));
      if (lseek(fd, 0, SEEK_SET) != 0) die("lseek");
      dup2(fd, 0);
      close(fd);
    } else {
      int r = strcmp(stream, "socket") == 0 ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds)
                                            : pipe2(fds, O_CLOEXEC);
      if (r < 0) die("pipe");
      // The writer is a grandchild, not the program's child (a program that waits for any
      // child must not reap it); with -o it keeps the stream open until the reader is gone.
      pid_t middle = fork();
      if (middle < 0) die("fork");
      if (middle == 0) {
        if (fork() != 0) _exit(0);
        close(fds[0]);
        signal(SIGPIPE, SIG_IGN);
        if (delay_ms >= 0) usleep((useconds_t)delay_ms * 1000);
        write_all(fds[1], bytes, len);
        write_all(fds[1], tail, strlen(tail));
        if (stay_open) {
          struct pollfd p = {.fd = fds[1], .events = 0};
          while (poll(&p, 1, -1) >= 0 && !(p.revents & (POLLERR | POLLHUP))) {}
        }
        _exit(0);
      }
      waitpid(middle, NULL, 0);
      if (delay_ms >= 0 && fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK) < 0) die("O_NONBLOCK");
      dup2(fds[0], 0);
      close(fds[0]);
      close(fds[1]);
    }
    execv(args[0], args);
    die(args[0]);
  }

  int memfd;
  if (open_file) {
    memfd = open(argv[optind], (path_only ? O_PATH : O_RDONLY) | (keep ? 0 : O_CLOEXEC));
    if (memfd < 0) die(argv[optind]);
  } else {
    memfd = memfd_create(name, (keep ? 0 : MFD_CLOEXEC) | MFD_ALLOW_SEALING);
    if (memfd < 0) die("memfd_create");
    write_all(memfd, bytes, len);
    if (fcntl(memfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) die("F_ADD_SEALS");
  }
  char number[16], path[32];
  snprintf(number, sizeof number, "%d", memfd);
  snprintf(path, sizeof path, "/dev/fd/%d", memfd);
  for (char **a = args; *a; a++) {
    if (strcmp(*a, "{fd}") == 0) *a = number;
    else if (strcmp(*a, "{path}") == 0) *a = path;
  }
  if (exec_path) {
    execv(exec_path, args);
    die(exec_path);
  }
  fexecve(memfd, args, environ);
  perror("fexecve");
  return 126;
}
