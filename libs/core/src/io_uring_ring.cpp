// io_uring builds only (MERCADO_IO_BACKEND=io_uring; cmake/MercadoTargets.cmake links every
// target with -Wl,--wrap=io_uring_queue_init): the size of each io_context's ring.
//
// Asio 1.81 asks for a ring of 16 384 entries (a constant of its io_uring_service), whose
// 1 MiB submission array and 580 KiB of rings are mapped and resident: 1.6 MiB per io
// thread. The submission queue only holds what has not been submitted yet, and Asio submits
// every 128 entries at the latest (and when the queue is full); the completion queue is
// twice as long, and a kernel with IORING_FEAT_NODROP keeps completions that do not fit
// until they are reaped. So a smaller ring bounds nothing but memory.
#include <liburing.h>

#include <algorithm>

namespace {
constexpr unsigned kRingEntries = 1024;
}  // namespace

// The linker's --wrap names (reserved identifiers by design).
extern "C" int __real_io_uring_queue_init(unsigned entries, struct io_uring* ring,  // NOLINT(bugprone-reserved-identifier)
                                          unsigned flags);

extern "C" int __wrap_io_uring_queue_init(unsigned entries, struct io_uring* ring,  // NOLINT(bugprone-reserved-identifier)
                                          unsigned flags) {
  return __real_io_uring_queue_init(std::min(entries, kRingEntries), ring, flags);
}
