// Counts a request in flight for as long as it lives (the drain on shutdown
// and the --max-queue limit read the count).
#pragma once

#include <atomic>

namespace tokenlora::server {

class InFlight {
 public:
  explicit InFlight(std::atomic<int>& count) : count_(&count) { ++*count_; }
  ~InFlight() { --*count_; }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  std::atomic<int>* count_;
};

}  // namespace tokenlora::server
