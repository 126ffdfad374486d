// Measures, for a freshly exec'd service: the time from exec to the first `GET /ready`
// answered 200, and the process's resident memory right then (idle RSS).
//   startup_probe <runs> <executable> [args...]     (the service must honour PORT)
// Prints one line per run and the median.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <mercado/core/process.hpp>

namespace {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// One GET /ready over a fresh connection; true on a 200.
bool ready(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const char req[] = "GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    ::send(fd, req, sizeof req - 1, 0);
    char buf[64] = {};
    ssize_t n = ::recv(fd, buf, sizeof buf - 1, 0);
    ok = n > 12 && std::strncmp(buf, "HTTP/1.1 200", 12) == 0;
  }
  ::close(fd);
  return ok;
}

double rss_mib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.starts_with("VmRSS:")) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: startup_probe <runs> <executable> [args...]\n");
    return 2;
  }
  int runs = std::atoi(argv[1]);
  std::vector<double> times, rss;
  for (int i = 0; i < runs; ++i) {
    int port = free_port();
    mercado::core::ProcessOptions o;
    o.path = argv[2];
    for (int a = 3; a < argc; ++a) o.args.emplace_back(argv[a]);
    o.env = {{"PORT", std::to_string(port)}, {"LOG_LEVEL", "warn"}};
    o.output_path = "/dev/null";
    auto start = std::chrono::steady_clock::now();
    auto p = mercado::core::Process::spawn(o);
    if (!p) {
      std::fprintf(stderr, "%s\n", p.error().message.c_str());
      return 1;
    }
    while (!ready(port)) {
      if (!p->running()) {
        std::fprintf(stderr, "service exited before it was ready\n");
        return 1;
      }
      ::usleep(100);
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    double mem = rss_mib(p->pid());
    p->terminate(std::chrono::seconds(5));
    times.push_back(ms);
    rss.push_back(mem);
    std::printf("run %d: exec->ready %.1f ms, RSS %.2f MiB\n", i + 1, ms, mem);
  }
  std::sort(times.begin(), times.end());
  std::sort(rss.begin(), rss.end());
  std::printf("median: exec->ready %.1f ms, idle RSS %.2f MiB\n", times[times.size() / 2], rss[rss.size() / 2]);
  return 0;
}
