// Loader: one producer thread and a bounded queue guarded by a mutex and two condition variables.
#include "data/loader.h"

#include <omp.h>

#include <utility>

namespace basin::data {

Loader::Loader(DatasetPtr<Example> ds, int64_t start, int prefetch) : ds_(std::move(ds)) {
  if (!ds_) fail("[Loader] the dataset is null");
  size_ = ds_->size();
  if (start < 0 || start > size_) {
    fail("[Loader] start {} is outside [0, {}] for a dataset of {} items", start, size_, size_);
  }
  if (prefetch < 1) fail("[Loader] prefetch must be at least 1, got {}", prefetch);
  prefetch_ = static_cast<size_t>(prefetch);
  position_ = start;
  worker_ = std::thread(&Loader::work, this, start);
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  space_.notify_all();
  worker_.join();
}

void Loader::work(int64_t start) {
  // The items' ops (collation copies) run on this thread alone: a second OpenMP team would
  // compete for the cores with the training step's.
  omp_set_num_threads(1);
  for (int64_t index = start; index < size_; ++index) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      space_.wait(lock, [this] { return stopping_ || queue_.size() < prefetch_; });
      if (stopping_) break;
    }
    try {
      Example item = ds_->get(index);
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(item));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
      break;
    }
    ready_.notify_one();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    finished_ = true;
  }
  ready_.notify_one();
}

std::optional<Example> Loader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  ready_.wait(lock, [this] { return !queue_.empty() || finished_; });
  if (!queue_.empty()) {
    Example item = std::move(queue_.front());
    queue_.pop_front();
    ++position_;
    lock.unlock();
    space_.notify_one();
    return item;
  }
  if (error_) {
    std::exception_ptr error = std::exchange(error_, nullptr);
    std::rethrow_exception(error);
  }
  return std::nullopt;
}

int64_t Loader::position() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return position_;
}

}  // namespace basin::data
