// without-io-uring COMMAND [ARGS...]: runs COMMAND on a host where io_uring is blocked (the
// seccomp filter of forbid_io_uring.hpp), for system tests of io_uring builds.
#include <cstdio>
#include <unistd.h>

#include "forbid_io_uring.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs("usage: without-io-uring COMMAND [ARGS...]\n", stderr);
    return 2;
  }
  mercado::testing::forbid_io_uring();
  ::execvp(argv[1], argv + 1);
  std::perror(argv[1]);
  return 127;
}
