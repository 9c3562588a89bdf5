// Running the command-line tools as a user does, from the tests: a fixture with a fresh directory
// for each test and run(), which captures a tool's exit code, stdout and stderr.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

namespace basin::testing {

/// What one run of a tool gave: its exit code (-1 when it did not exit normally), stdout, stderr.
struct CliResult {
  int code = -1;
  std::string out, err;
};

/// The whole content of the file at `p` (empty when it cannot be read).
inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The number of lines in `s` (its newline characters).
inline int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

#ifdef BASIN_TOOLS_DIR

/// A fixture for tests that run the tools: dir_ is a fresh directory "<prefix>-<pid>-<test name>"
/// in the system's temporary directory, removed after the test.
class CliFixture : public ::testing::Test {
 protected:
  explicit CliFixture(std::string prefix) : prefix_(std::move(prefix)) {}

  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           (prefix_ + "-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  /// Runs `tool` with `args` from the source root (configs name ../shared/data relative to it).
  CliResult run(const std::string& tool, const std::string& args) {
    const std::filesystem::path err = dir_ / "stderr.txt";
    const std::string cmd = "cd '" BASIN_SOURCE_DIR "' && '" BASIN_TOOLS_DIR "/" + tool + "' " +
                            args + " 2>'" + err.string() + "'";
    CliResult r;
    FILE* pipe = ::popen(cmd.c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.out.append(buf, n);
    const int status = ::pclose(pipe);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.err = slurp(err);
    return r;
  }

  std::filesystem::path dir_;

 private:
  std::string prefix_;
};

#endif  // BASIN_TOOLS_DIR

}  // namespace basin::testing
