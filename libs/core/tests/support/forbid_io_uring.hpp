#pragma once
// For tests of io_uring builds: a host where io_uring is blocked, as a container runtime's
// default seccomp profile blocks it (io_uring_setup fails with EPERM).

namespace mercado::testing {

// True where forbid_io_uring() can install its filter (x86_64 and aarch64).
bool can_forbid_io_uring() noexcept;

// Installs a seccomp filter on the calling thread (inherited by its children and kept across
// exec) under which io_uring_setup fails with EPERM; everything else is allowed. For a
// child process only: it cannot be undone. Exits the process with status 2 if the kernel
// refuses the filter.
void forbid_io_uring() noexcept;

}  // namespace mercado::testing
