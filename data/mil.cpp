// MIL bags: the Andrews .mat layout through MatFile, the UCI Musk CSV, and the bag-level dataset,
// collate, dropout and standardisation built on them.
#include "data/mil.h"

#include <cmath>
#include <cstring>
#include <map>
#include <unordered_map>

#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/index.h"
#include "core/ops/movement.h"
#include "core/ops/reduce.h"
#include "data/file_io.h"
#include "data/mat.h"

namespace basin::data {
namespace {

// Builds the bags from per-instance rows: `features` (n, F) row-major, the instance labels in
// {0, 1}, and the instances of each bag (in bag order), with the bag ids.
MilBags make_bags(const std::vector<float>& features, int64_t num_features,
                  const std::vector<int64_t>& instance_labels,
                  const std::vector<std::vector<int64_t>>& members,
                  const std::vector<std::string>& ids) {
  MilBags out;
  out.num_features = num_features;
  const auto row_bytes = static_cast<size_t>(num_features) * sizeof(float);
  for (size_t b = 0; b < members.size(); ++b) {
    const auto n = static_cast<int64_t>(members[b].size());
    MilBag bag;
    bag.id = ids[b];
    bag.instances = zeros({n, num_features}, Dtype::f32);
    bag.instance_labels = zeros({n}, Dtype::i64);
    float* x = bag.instances.data<float>();
    int64_t* y = bag.instance_labels.data<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t row = members[b][i];
      if (row_bytes > 0)
        std::memcpy(x + i * num_features, &features[row * num_features], row_bytes);
      y[i] = instance_labels[row];
      bag.label = std::max(bag.label, y[i]);
    }
    out.bags.push_back(std::move(bag));
  }
  return out;
}

}  // namespace

int64_t MilBags::num_instances() const {
  int64_t n = 0;
  for (const MilBag& b : bags) n += b.instances.defined() ? b.instances.shape(0) : 0;
  return n;
}

std::vector<int64_t> MilBags::labels() const {
  std::vector<int64_t> out;
  out.reserve(bags.size());
  for (const MilBag& b : bags) out.push_back(b.label);
  return out;
}

// --- readers ---------------------------------------------------------------------------------

MilBags read_mil_mat(const std::string& path) {
  const MatFile file(path);
  for (const char* var : {"features", "labels", "bag_ids"}) {
    if (!file.has(var)) {
      fail(
          "[read_mil_mat] '{}': no variable '{}'; the MIL layout needs 'features', 'labels' and "
          "'bag_ids' ({})",
          path, var, [&] {
            std::string names;
            for (const MatVarInfo& v : file.variables())
              names += (names.empty() ? "" : ", ") + v.name;
            return names.empty() ? std::string("the file holds no variables")
                                 : "the file holds " + names;
          }());
    }
  }
  const Tensor features = file.read("features", Dtype::f32);
  if (features.ndim() != 2) {
    fail("[read_mil_mat] '{}': 'features' must be a matrix (instances × features), got shape {}",
         path, shape_str(features.shape()));
  }
  const Tensor labels = file.read_vector("labels", Dtype::f64);
  const Tensor bag_ids = file.read_vector("bag_ids", Dtype::i64);
  const int64_t n = features.shape(0), num_features = features.shape(1);
  if (labels.numel() != n || bag_ids.numel() != n) {
    fail(
        "[read_mil_mat] '{}': lengths differ: 'features' has {} instances (rows), 'labels' has "
        "{} and 'bag_ids' has {} entries",
        path, n, labels.numel(), bag_ids.numel());
  }
  if (n == 0) fail("[read_mil_mat] '{}': the file holds no instances", path);
  if (num_features == 0) fail("[read_mil_mat] '{}': 'features' has no columns", path);

  std::vector<float> x = features.to_vector<float>();
  for (size_t k = 0; k < x.size(); ++k) {
    if (!std::isfinite(x[k])) {
      fail("[read_mil_mat] '{}': 'features' has {} at instance {}, feature {}", path, x[k],
           static_cast<int64_t>(k) / num_features, static_cast<int64_t>(k) % num_features);
    }
  }
  const std::vector<double> y = labels.to_vector<double>();
  std::vector<int64_t> instance_labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (y[i] != -1.0 && y[i] != 0.0 && y[i] != 1.0) {
      fail("[read_mil_mat] '{}': 'labels' has {} at instance {}; labels must be -1/+1 or 0/1", path,
           y[i], i);
    }
    instance_labels[i] = y[i] > 0.0 ? 1 : 0;
  }
  std::map<int64_t, std::vector<int64_t>> by_id;
  const std::vector<int64_t> ids = bag_ids.to_vector<int64_t>();
  for (int64_t i = 0; i < n; ++i) by_id[ids[i]].push_back(i);
  std::vector<std::vector<int64_t>> members;
  std::vector<std::string> names;
  for (auto& [id, rows] : by_id) {
    members.push_back(std::move(rows));
    names.push_back(std::to_string(id));
  }
  return make_bags(x, num_features, instance_labels, members, names);
}

MilBags read_musk_csv(const std::string& path) {
  const std::string text = detail::read_file(path, "read_musk_csv");
  std::vector<float> features;
  std::vector<int64_t> instance_labels;
  std::vector<std::vector<int64_t>> members;
  std::vector<std::string> names;
  std::unordered_map<std::string, size_t> bag_of;
  size_t num_fields = 0;
  int64_t line_no = 0, n = 0;
  std::vector<std::string_view> fields;
  std::string_view line;
  for (size_t pos = 0; detail::next_line(text, pos, line);) {
    ++line_no;
    if (line.empty()) continue;
    detail::split_commas(line, fields);
    if (num_fields == 0) {
      if (fields.size() < 4) {
        fail(
            "[read_musk_csv] '{}' line {}: {} fields; a Musk line has molecule, conformation, at "
            "least one feature and the class",
            path, line_no, fields.size());
      }
      num_fields = fields.size();
    } else if (fields.size() != num_fields) {
      fail("[read_musk_csv] '{}' line {}: {} fields, but the first line has {}", path, line_no,
           fields.size(), num_fields);
    }
    if (fields[0].empty()) fail("[read_musk_csv] '{}' line {}: empty molecule name", path, line_no);
    for (size_t f = 2; f + 1 < num_fields; ++f) {
      double v = 0.0;
      if (!detail::parse_double(fields[f], v) || !std::isfinite(v)) {
        fail("[read_musk_csv] '{}' line {}: feature {} (field {}) is '{}', not a finite number",
             path, line_no, f - 2, f + 1, fields[f]);
      }
      features.push_back(static_cast<float>(v));
    }
    double cls = 0.0;
    if (!detail::parse_double(fields.back(), cls) || (cls != 0.0 && cls != 1.0)) {
      fail("[read_musk_csv] '{}' line {}: class is '{}', not 0 or 1", path, line_no, fields.back());
    }
    instance_labels.push_back(static_cast<int64_t>(cls));
    const std::string name(fields[0]);
    auto [it, added] = bag_of.try_emplace(name, members.size());
    if (added) {
      members.emplace_back();
      names.push_back(name);
    }
    members[it->second].push_back(n++);
  }
  if (n == 0) fail("[read_musk_csv] '{}': the file holds no instances", path);
  return make_bags(features, static_cast<int64_t>(num_fields) - 3, instance_labels, members, names);
}

// --- dataset and collate ---------------------------------------------------------------------

namespace {

class MilDataset : public Dataset<Example> {
 public:
  explicit MilDataset(MilBags bags) : bags_(std::move(bags)) {
    for (int64_t i = 0; i < bags_.size(); ++i) {
      const MilBag& b = bags_.bags[i];
      if (!b.instances.defined() || b.instances.ndim() != 2 ||
          b.instances.shape(1) != bags_.num_features) {
        fail("[mil_dataset] bag {} (id '{}') must have instances of shape (n, {}), got {}", i, b.id,
             bags_.num_features,
             b.instances.defined() ? shape_str(b.instances.shape()) : std::string("none"));
      }
      if (b.instances.shape(0) == 0) {
        fail("[mil_dataset] bag {} (id '{}') is empty; every bag needs at least one instance", i,
             b.id);
      }
    }
  }
  int64_t size() const override { return bags_.size(); }
  Example get(int64_t index) const override {
    check_index("mil_dataset", index, size());
    const MilBag& b = bags_.bags[index];
    return {{"instances", b.instances.astype(Dtype::f32)},
            {"label", scalar(static_cast<double>(b.label), Dtype::i64)},
            {"index", scalar(static_cast<double>(index), Dtype::i64)}};
  }

 private:
  MilBags bags_;
};

}  // namespace

DatasetPtr<Example> mil_dataset(MilBags bags) {
  return std::make_shared<MilDataset>(std::move(bags));
}

Example collate_bags(const std::vector<Example>& items) {
  if (items.empty()) fail("[collate_bags] no items to collate");
  int64_t max_n = 0, num_features = -1;
  std::vector<Tensor> bags;
  for (size_t k = 0; k < items.size(); ++k) {
    if (items[k].count("padding_mask") > 0 || items[k].count("sizes") > 0) {
      fail("[collate_bags] item {} already has a field 'padding_mask' or 'sizes'", k);
    }
    const auto it = items[k].find("instances");
    if (it == items[k].end()) fail("[collate_bags] item {} has no field 'instances'", k);
    const Tensor& x = it->second;
    if (x.ndim() != 2) {
      fail("[collate_bags] item {}: 'instances' must be (n, F), got {}", k, shape_str(x.shape()));
    }
    if (num_features >= 0 && x.shape(1) != num_features) {
      fail("[collate_bags] item {} has {} features but item 0 has {}", k, x.shape(1), num_features);
    }
    if (x.shape(0) == 0) fail("[collate_bags] item {} is an empty bag", k);
    num_features = x.shape(1);
    max_n = std::max(max_n, x.shape(0));
    bags.push_back(x.astype(Dtype::f32).contiguous());
  }
  const auto batch = static_cast<int64_t>(items.size());
  Tensor instances = zeros({batch, max_n, num_features}, Dtype::f32);  // (B, N, F)
  Tensor padding = ones({batch, max_n}, Dtype::boolean);               // (B, N)
  Tensor sizes = zeros({batch}, Dtype::i64);
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t n = bags[b].shape(0);
    std::memcpy(instances.data<float>() + b * max_n * num_features, bags[b].data<float>(),
                static_cast<size_t>(n * num_features) * sizeof(float));
    std::fill_n(padding.data<bool>() + b * max_n, n, false);
    sizes.data<int64_t>()[b] = n;
  }
  Example out{{"instances", instances}, {"padding_mask", padding}, {"sizes", sizes}};
  for (const auto& [name, first] : items[0]) {
    if (name == "instances") continue;
    Tensors parts;
    for (size_t k = 0; k < items.size(); ++k) {
      const auto it = items[k].find(name);
      if (it == items[k].end()) fail("[collate_bags] item {} lacks field '{}' of item 0", k, name);
      if (it->second.ndim() != 0) {
        fail(
            "[collate_bags] field '{}' has shape {} in item {}; besides 'instances' only 0-d "
            "fields can be collated",
            name, shape_str(it->second.shape()), k);
      }
      parts.push_back(it->second);
    }
    out.emplace(name, stack(parts, 0));
  }
  for (size_t k = 1; k < items.size(); ++k) {
    if (items[k].size() != items[0].size()) {
      fail("[collate_bags] item {} has {} fields but item 0 has {}", k, items[k].size(),
           items[0].size());
    }
  }
  return out;
}

// --- bag dropout -----------------------------------------------------------------------------

Tensor drop_instances(const Tensor& instances, double p, Generator& gen) {
  if (!(p >= 0.0 && p <= 1.0)) fail("[drop_instances] p must lie in [0, 1], got {}", p);
  if (!instances.defined() || instances.ndim() < 1) {
    fail("[drop_instances] instances must have at least one dimension");
  }
  const int64_t n = instances.shape(0);
  if (p == 0.0 || n <= 1) return instances;
  const std::vector<double> u = rand({n}, Dtype::f64, Device::cpu(), &gen).to_vector<double>();
  std::vector<int64_t> keep;
  int64_t best = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (u[i] >= p) keep.push_back(i);
    if (u[i] > u[best]) best = i;
  }
  if (keep.empty()) keep.push_back(best);
  if (static_cast<int64_t>(keep.size()) == n) return instances;
  return index_select(instances, 0, from_vector(keep, {static_cast<int64_t>(keep.size())}));
}

BagDropout::BagDropout(DatasetPtr<Example> base, double p, uint64_t seed, int64_t epoch)
    : base_(std::move(base)), p_(p), seed_(seed) {
  if (!base_) fail("[bag_dropout] the dataset is null");
  if (!(p >= 0.0 && p <= 1.0)) fail("[bag_dropout] p must lie in [0, 1], got {}", p);
  set_epoch(epoch);
}

void BagDropout::set_epoch(int64_t epoch) {
  if (epoch < 0) fail("[bag_dropout] epoch must be non-negative, got {}", epoch);
  epoch_.store(epoch);
}

Example BagDropout::get(int64_t index) const {
  check_index("bag_dropout", index, size());
  Example item = base_->get(index);
  const auto it = item.find("instances");
  if (it == item.end()) fail("[bag_dropout] item {} has no field 'instances'", index);
  const auto r =
      philox4x32(seed_, static_cast<uint64_t>(index), static_cast<uint64_t>(epoch_.load()));
  Generator gen(uint64_t{r[0]} << 32 | r[1]);
  it->second = drop_instances(it->second, p_, gen);
  return item;
}

std::shared_ptr<BagDropout> bag_dropout(DatasetPtr<Example> ds, double p, uint64_t seed,
                                        int64_t epoch) {
  return std::make_shared<BagDropout>(std::move(ds), p, seed, epoch);
}

// --- standardisation -------------------------------------------------------------------------

Tensor FeatureScaler::apply(const Tensor& x) const {
  if (!mean.defined() || !stddev.defined()) fail("[FeatureScaler] the scaler is not fitted");
  if (x.ndim() < 1 || x.shape(-1) != mean.shape(0)) {
    fail("[FeatureScaler] input of shape {} does not end in the {} fitted features",
         shape_str(x.shape()), mean.shape(0));
  }
  return div(sub(x.astype(Dtype::f64), mean), stddev).astype(x.dtype());
}

FeatureScaler fit_feature_scaler(const MilBags& bags, std::span<const int64_t> bag_indices) {
  if (bag_indices.empty()) fail("[fit_feature_scaler] no bags to fit on");
  Tensors parts;
  for (int64_t i : bag_indices) {
    if (i < 0 || i >= bags.size()) {
      fail("[fit_feature_scaler] bag index {} is out of range for {} bags", i, bags.size());
    }
    const Tensor& x = bags.bags[i].instances;
    if (x.ndim() != 2 || x.shape(1) != bags.num_features) {
      fail("[fit_feature_scaler] bag {} has instances of shape {}, not (n, {})", i,
           shape_str(x.shape()), bags.num_features);
    }
    if (x.shape(0) > 0) parts.push_back(x.astype(Dtype::f64));
  }
  if (parts.empty()) fail("[fit_feature_scaler] the bags to fit on hold no instances");
  return fit_feature_scaler(concat(parts, 0));
}

FeatureScaler fit_feature_scaler(const Tensor& rows) {
  if (!rows.defined() || rows.ndim() != 2 || rows.shape(0) == 0) {
    fail("[fit_feature_scaler] needs rows of shape (N, F) with N >= 1, got {}",
         rows.defined() ? shape_str(rows.shape()) : std::string("an undefined tensor"));
  }
  const Tensor x = rows.astype(Dtype::f64);  // (N, F)
  FeatureScaler s;
  s.mean = basin::mean(x, {0});
  const Tensor sd = basin::std(x, {0});
  s.stddev = where(equal(sd, zeros_like(sd)), ones_like(sd), sd);
  return s;
}

MilBags standardize(const MilBags& bags, const FeatureScaler& scaler) {
  MilBags out = bags;
  for (MilBag& b : out.bags) b.instances = scaler.apply(b.instances);
  return out;
}

}  // namespace basin::data
