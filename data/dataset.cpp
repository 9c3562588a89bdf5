// Permutations, in-memory tensor datasets, collate functions and batching.
#include "data/dataset.h"

#include <fmt/format.h>

#include "core/ops/creation.h"
#include "core/ops/movement.h"
#include "core/random.h"

namespace basin::data {

std::vector<int64_t> permutation(int64_t n, uint64_t seed, int64_t epoch) {
  if (n < 0) fail("[permutation] n must be non-negative, got {}", n);
  if (epoch < 0) fail("[permutation] epoch must be non-negative, got {}", epoch);
  Generator gen(seed);
  gen.set_state(seed, static_cast<uint64_t>(epoch) * static_cast<uint64_t>(n));
  return randperm(n, Device::cpu(), &gen).to_vector<int64_t>();
}

// --- in-memory tensors -----------------------------------------------------------------------

namespace {

class TensorDataset : public Dataset<Example> {
 public:
  explicit TensorDataset(Example fields) : fields_(std::move(fields)) {
    if (fields_.empty()) fail("[tensor_dataset] needs at least one field");
    const auto& [first_name, first] = *fields_.begin();
    for (const auto& [name, t] : fields_) {
      if (!t.defined()) fail("[tensor_dataset] field '{}' is undefined", name);
      if (t.ndim() == 0)
        fail("[tensor_dataset] field '{}' is 0-d; every field needs an item axis", name);
      if (t.shape(0) != first.shape(0)) {
        fail("[tensor_dataset] field '{}' has {} items (shape {}) but field '{}' has {} (shape {})",
             name, t.shape(0), shape_str(t.shape()), first_name, first.shape(0),
             shape_str(first.shape()));
      }
    }
    size_ = first.shape(0);
  }
  int64_t size() const override { return size_; }
  Example get(int64_t index) const override {
    check_index("tensor_dataset", index, size_);
    Example item;
    for (const auto& [name, t] : fields_) {
      const Shape rest(t.shape().begin() + 1, t.shape().end());
      item.emplace(name, reshape(narrow(t, 0, index, 1), rest));
    }
    return item;
  }

 private:
  Example fields_;
  int64_t size_ = 0;
};

}  // namespace

DatasetPtr<Example> tensor_dataset(Example fields) {
  return std::make_shared<TensorDataset>(std::move(fields));
}

// --- collate ---------------------------------------------------------------------------------

namespace {

std::string field_names(const Example& e) {
  std::string s = "{";
  for (const auto& [name, t] : e) {
    if (s.size() > 1) s += ", ";
    s += name;
  }
  return s + "}";
}

// Every item must have item 0's fields, each defined; returns the tensors of each field.
std::map<std::string, Tensors> gather_fields(const char* who, const std::vector<Example>& items) {
  if (items.empty()) fail("[{}] needs at least one item", who);
  std::map<std::string, Tensors> fields;
  for (const auto& [name, t] : items[0]) fields[name].reserve(items.size());
  for (size_t k = 0; k < items.size(); ++k) {
    const Example& item = items[k];
    bool same = item.size() == items[0].size();
    for (auto it = item.begin(); same && it != item.end(); ++it) same = fields.count(it->first) > 0;
    if (!same) {
      fail("[{}] item {} has fields {} but item 0 has {}", who, k, field_names(item),
           field_names(items[0]));
    }
    for (const auto& [name, t] : item) {
      if (!t.defined()) fail("[{}] field '{}' of item {} is undefined", who, name, k);
      fields[name].push_back(t);
    }
  }
  return fields;
}

}  // namespace

Example stack_collate(const std::vector<Example>& items) {
  Example out;
  for (auto& [name, tensors] : gather_fields("stack_collate", items)) {
    for (size_t k = 1; k < tensors.size(); ++k) {
      if (tensors[k].shape() != tensors[0].shape()) {
        fail(
            "[stack_collate] field '{}' has shape {} in item {} but {} in item 0; use "
            "ragged_collate for fields whose size varies",
            name, shape_str(tensors[k].shape()), k, shape_str(tensors[0].shape()));
      }
    }
    out.emplace(name, stack(tensors, 0));
  }
  return out;
}

Example ragged_collate(const std::vector<Example>& items) {
  Example out;
  const auto fields = gather_fields("ragged_collate", items);
  for (const auto& [name, tensors] : fields) {
    if (tensors[0].ndim() == 0) {
      for (size_t k = 1; k < tensors.size(); ++k) {
        if (tensors[k].ndim() != 0) {
          fail("[ragged_collate] field '{}' is 0-d in item 0 but has shape {} in item {}", name,
               shape_str(tensors[k].shape()), k);
        }
      }
      out.emplace(name, stack(tensors, 0));
      continue;
    }
    const std::string offsets_name = name + "_offsets";
    if (fields.count(offsets_name) > 0) {
      fail("[ragged_collate] field '{}' would add '{}', which is already a field", name,
           offsets_name);
    }
    const Shape rest(tensors[0].shape().begin() + 1, tensors[0].shape().end());
    std::vector<int64_t> offsets{0};
    for (size_t k = 0; k < tensors.size(); ++k) {
      const Tensor& t = tensors[k];
      if (t.ndim() == 0 || Shape(t.shape().begin() + 1, t.shape().end()) != rest) {
        fail(
            "[ragged_collate] field '{}' has shape {} in item {} but {} in item 0; only the first "
            "dimension may vary",
            name, shape_str(t.shape()), k, shape_str(tensors[0].shape()));
      }
      offsets.push_back(offsets.back() + t.shape(0));
    }
    out.emplace(name, concat(tensors, 0));
    out.emplace(offsets_name,
                from_vector(offsets, {static_cast<int64_t>(offsets.size())}, Device::cpu()));
  }
  return out;
}

// --- batching --------------------------------------------------------------------------------

namespace {

class Batched : public Dataset<Example> {
 public:
  Batched(DatasetPtr<Example> base, int64_t batch_size, bool drop_last, Collate collate)
      : base_(std::move(base)), batch_size_(batch_size), collate_(std::move(collate)) {
    if (!base_) fail("[batch] the dataset is null");
    if (batch_size_ <= 0) fail("[batch] batch_size must be positive, got {}", batch_size_);
    if (!collate_) fail("[batch] the collate function is empty");
    const int64_t n = base_->size();
    size_ = drop_last ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
  }
  int64_t size() const override { return size_; }
  Example get(int64_t index) const override {
    check_index("batch", index, size_);
    const int64_t begin = index * batch_size_;
    const int64_t end = std::min(begin + batch_size_, base_->size());
    std::vector<Example> items;
    items.reserve(static_cast<size_t>(end - begin));
    for (int64_t i = begin; i < end; ++i) items.push_back(base_->get(i));
    return collate_(items);
  }

 private:
  DatasetPtr<Example> base_;
  int64_t batch_size_;
  Collate collate_;
  int64_t size_ = 0;
};

}  // namespace

DatasetPtr<Example> batch(DatasetPtr<Example> ds, int64_t batch_size, bool drop_last,
                          Collate collate) {
  return std::make_shared<Batched>(std::move(ds), batch_size, drop_last, std::move(collate));
}

}  // namespace basin::data
