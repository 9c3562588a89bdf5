// Loader: reads a dataset in order on a background thread, a few items ahead of the consumer.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "data/dataset.h"

namespace basin::data {

/// Iterates items start, start + 1, ..., size - 1 of a dataset (usually already batched) in
/// order. One background thread calls get() and keeps up to `prefetch` items ready in a queue;
/// next() hands them out. An exception thrown by get() is rethrown by the next() that would have
/// returned that item, and iteration ends there (later calls return nothing; position() stays at
/// the failing item). The destructor
/// stops the thread and joins it, whether or not the items were all taken; it waits for a get()
/// already running to finish.
///
///   auto batches = batch(shuffle(ds, seed), 64);
///   for (Loader loader(batches); auto b = loader.next();) train_step(*b);
class Loader {
 public:
  /// `start` in [0, ds->size()] (resuming in the middle of an epoch); `prefetch` >= 1.
  explicit Loader(DatasetPtr<Example> ds, int64_t start = 0, int prefetch = 2);
  /// Stops the worker and joins it, after any get() it is running.
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  /// The next item, or nothing once every item has been returned.
  std::optional<Example> next();
  /// The index of the item the next call to next() returns (ds->size() at the end): save it to
  /// resume a run in the middle of an epoch with Loader(ds, position()).
  int64_t position() const;
  /// The number of items of the dataset (not those left).
  int64_t size() const { return size_; }

 private:
  void work(int64_t start);

  DatasetPtr<Example> ds_;
  int64_t size_;
  size_t prefetch_;

  mutable std::mutex mutex_;
  std::condition_variable ready_;  // an item, an error or the end is available to next()
  std::condition_variable space_;  // the queue has room, or the loader is stopping
  std::deque<Example> queue_;
  std::exception_ptr error_;  // thrown by get() after the items in queue_
  bool finished_ = false;     // the worker has stopped producing
  bool stopping_ = false;     // the destructor asks the worker to stop
  int64_t position_;
  std::thread worker_;
};

}  // namespace basin::data
