#include <mercado/core/process.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

extern char** environ;

namespace mercado::core {

Result<Process> Process::spawn(const ProcessOptions& o) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos) env[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
  }
  for (const auto& [k, v] : o.env) env[k] = v;
  std::vector<std::string> env_strings;
  env_strings.reserve(env.size());
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  std::vector<std::string> argv_strings{o.path};
  argv_strings.insert(argv_strings.end(), o.args.begin(), o.args.end());
  std::vector<char*> argv;
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (!o.output_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, 1, o.output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The child starts with default signal dispositions and an empty mask.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, o.path.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return fail(Errc::unavailable, "cannot start " + o.path + ": " + std::strerror(rc));
  return Process(pid);
}

Process::Process(Process&& other) noexcept : pid_(other.pid_), status_(other.status_) { other.pid_ = -1; }

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      reap(0);
    }
    pid_ = other.pid_;
    status_ = other.status_;
    other.pid_ = -1;
  }
  return *this;
}

Process::~Process() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    reap(0);
  }
}

bool Process::reap(int flags) {
  if (pid_ <= 0 || status_) return true;
  int st = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &st, flags);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return true;
  }
  return r < 0;  // ECHILD: nothing to wait for
}

bool Process::running() { return pid_ > 0 && !reap(WNOHANG); }

void Process::signal(int signo) {
  if (pid_ > 0 && !status_) ::kill(pid_, signo);
}

std::optional<int> Process::wait_for(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  if (reap(WNOHANG)) return status_;
  // A pidfd would be ideal; SIGCHLD-free waiting via a short poll loop on pidfd_open.
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(timeout.count()));
    ::close(pidfd);
    if (reap(WNOHANG)) return status_;
    return std::nullopt;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (reap(WNOHANG)) return status_;
    ::usleep(2000);
  }
  return reap(WNOHANG) ? status_ : std::nullopt;
}

int Process::terminate(std::chrono::milliseconds grace) {
  signal(SIGTERM);
  if (auto st = wait_for(grace)) return *st;
  signal(SIGKILL);
  reap(0);
  return status_.value_or(-1);
}

bool wait_for_file(const std::string& path, std::chrono::milliseconds timeout) {
  struct stat sb{};
  if (::stat(path.c_str(), &sb) == 0) return true;
  auto slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  int fd = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (fd < 0) return false;
  ::inotify_add_watch(fd, dir.c_str(), IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool found = ::stat(path.c_str(), &sb) == 0;  // created between the first stat and the watch
  while (!found) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    alignas(inotify_event) char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    for (ssize_t off = 0; off < n;) {
      auto* ev = reinterpret_cast<inotify_event*>(buf + off);
      if (ev->len > 0 && name == ev->name) found = true;
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
    }
    if (!found) found = ::stat(path.c_str(), &sb) == 0;
  }
  ::close(fd);
  return found;
}

}  // namespace mercado::core
