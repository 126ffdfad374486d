#include <mercado/core/process.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <fstream>

namespace mercado::core {
namespace {

TEST(Process, RunsWithExtraEnvironmentAndCapturesOutput) {
  std::string out = ::testing::TempDir() + "proc_" + std::to_string(::getpid()) + ".log";
  std::remove(out.c_str());
  auto p = Process::spawn({.path = "/bin/sh", .args = {"-c", "echo \"$GREETING\"; exit 3"},
                           .env = {{"GREETING", "hola"}}, .output_path = out});
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->wait_for(std::chrono::seconds(10)), 3);
  std::ifstream in(out);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "hola");
  std::remove(out.c_str());
}

TEST(Process, TerminateEndsAChildThatIgnoresNothing) {
  auto p = Process::spawn({.path = "/bin/sleep", .args = {"60"}});
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->running());
  EXPECT_FALSE(p->wait_for(std::chrono::milliseconds(10)));
  EXPECT_EQ(p->terminate(std::chrono::seconds(5)), 128 + SIGTERM);
  EXPECT_FALSE(p->running());
}

TEST(Process, MissingExecutableIsAnError) {
  auto p = Process::spawn({.path = "/nonexistent/binary"});
  EXPECT_FALSE(p);
}

TEST(Process, WaitForFileSeesACreation) {
  std::string path = ::testing::TempDir() + "ready_" + std::to_string(::getpid());
  std::remove(path.c_str());
  auto p = Process::spawn({.path = "/bin/sh", .args = {"-c", "echo x > " + path}});
  ASSERT_TRUE(p);
  EXPECT_TRUE(wait_for_file(path, std::chrono::seconds(10)));
  EXPECT_FALSE(wait_for_file(path + ".never", std::chrono::milliseconds(50)));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace mercado::core
