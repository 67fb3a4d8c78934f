// ReadTextFile reads with a bound: a device such as /dev/zero, or a huge
// wrong file, is an InputError naming the path, never a read until the
// kernel kills the process.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "core/mapped_file.h"
#include "test_util.h"

namespace tokenlora {
namespace {

TEST(ReadTextFile, ReadsUpToTheBoundAndRefusesMore) {
  const std::string dir = testing::TempDir();
  const std::string path = dir + "/t.txt";
  const std::string text(100000, 'x');
  std::ofstream(path, std::ios::binary) << text;
  EXPECT_EQ(ReadTextFile(path), text);
  EXPECT_EQ(ReadTextFile(path, text.size()), text);
  try {
    ReadTextFile(path, text.size() - 1);
    ADD_FAILURE() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'" + path + "' holds more than"), std::string::npos) << e.what();
  }
  try {
    ReadTextFile("/dev/zero", size_t{1} << 20);
    ADD_FAILURE() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/dev/zero"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tokenlora
