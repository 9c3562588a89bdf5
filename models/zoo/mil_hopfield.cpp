// model.type = "mil_hopfield": bag classification with Hopfield pooling on multiple-instance
// learning data (Elephant, Fox, Tiger, Musk1/2), the model of Ramsauer et al. A.5.2.2. See
// docs/mil.md and configs/mil_*.toml.
//
//   [model]
//   type = "mil_hopfield"
//   embedding = [256, 128]         # instance MLP widths, each Linear followed by ReLU
//   heads = 8                      # num_heads of the pooling
//   head_dim = 32                  # association space per head (0: embedding width / heads)
//   scaling = 1.0                  # β: one value or one per head (absent: 1/sqrt(head_dim))
//   learnable_scaling = false      # train β (one per head)
//   quantity = 1                   # learned state patterns (queries) of the pooling
//   output_size = 0                # the pooling's output projection (0: the embedding width)
//   update_steps_max = 0           # extra Hopfield updates (-1: until update_steps_eps)
//   update_steps_eps = 1e-4
//   normalize_stored_pattern = true      # the LayerNorm sites of hflayers
//   normalize_state_pattern = true
//   normalize_pattern_projection = true
//   normalize_hopfield_space = false
//   normalize_affine = true        # the enabled LayerNorms have a weight and bias
//   association_dropout = 0.0      # dropout on the association matrix (training only)
//   pos_weight = 1.0               # BCE weight of positive bags, or "balanced" (neg / pos count
//                                  # of the training bags)
//   [data]
//   type = "mil"
//   root = "../shared/data/elephant"      # folder of the file (basin-eval --data replaces it)
//   file = "elephant_100x100_matlab.mat"  # .mat (Andrews et al. layout) or a UCI Musk CSV
//   format = "auto"                # auto (by extension: .mat, else CSV), mat, musk_csv
//   standardize = true             # z-score features with statistics of the training bags
//   bag_dropout = 0.0              # drop each training instance with this probability per epoch
//   test_fraction = 0.1            # held-out bags (stratified) when the config has no [cv]
//
// With a [cv] section (models/train/cross_validation.h) the task trains on the fold it names.
#include "models/zoo/mil_hopfield.h"

#include <algorithm>
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "core/ops.h"
#include "data/metrics.h"
#include "data/mil.h"
#include "data/split.h"
#include "models/nn/loss.h"
#include "models/train/cross_validation.h"
#include "models/train/task.h"

namespace basin::zoo {

namespace {

/// A number, or a list of numbers, under `key` (nullopt when absent).
std::optional<std::vector<double>> numbers(Config& section, const char* key) {
  if (!section.has(key)) return std::nullopt;
  try {
    return std::vector<double>{section.get<double>(key)};
  } catch (const Error&) {
    return section.get<std::vector<double>>(key);
  }
}

}  // namespace

MilHopfieldOptions mil_hopfield_options(Config model, int64_t num_features) {
  check(num_features > 0, "[mil_hopfield] the bags need at least one feature, got {}",
        num_features);
  MilHopfieldOptions o;
  o.num_features = num_features;
  o.embedding = model.get<std::vector<int64_t>>("embedding", {256, 128});
  check(!o.embedding.empty(), "[config] model.embedding: needs at least one layer width");
  for (int64_t w : o.embedding)
    check(w > 0, "[config] model.embedding: widths must be positive, got {}", w);
  energy::HopfieldOptions& h = o.hopfield;
  h.num_heads = model.get<int64_t>("heads", 8);
  check(h.num_heads > 0, "[config] model.heads: must be positive, got {}", h.num_heads);
  const int64_t head_dim = model.get<int64_t>("head_dim", 32);
  check(head_dim >= 0, "[config] model.head_dim: must be positive (or 0 for width / heads), got {}",
        head_dim);
  if (head_dim > 0) h.hidden_size = head_dim;
  if (const auto beta = numbers(model, "scaling")) {
    check(beta->size() == 1 || static_cast<int64_t>(beta->size()) == h.num_heads,
          "[config] model.scaling: give one β or one per head ({}), got {} values", h.num_heads,
          beta->size());
    for (double b : *beta) {
      check(b > 0 && std::isfinite(b), "[config] model.scaling: β must be positive, got {}", b);
    }
    h.scaling = *beta;
  }
  h.learnable_scaling = model.get<bool>("learnable_scaling", false);
  o.quantity = model.get<int64_t>("quantity", 1);
  check(o.quantity > 0, "[config] model.quantity: must be positive, got {}", o.quantity);
  const int64_t output_size = model.get<int64_t>("output_size", 0);
  check(output_size >= 0, "[config] model.output_size: must be positive (or 0), got {}",
        output_size);
  if (output_size > 0) h.output_size = output_size;
  h.update_steps_max = model.get<int64_t>("update_steps_max", 0);
  check(h.update_steps_max >= -1,
        "[config] model.update_steps_max: must be >= 0, or -1 for unlimited, got {}",
        h.update_steps_max);
  h.update_steps_eps = model.get<double>("update_steps_eps", 1e-4);
  check(h.update_steps_eps > 0, "[config] model.update_steps_eps: must be positive, got {}",
        h.update_steps_eps);
  h.normalize_stored_pattern = model.get<bool>("normalize_stored_pattern", true);
  h.normalize_state_pattern = model.get<bool>("normalize_state_pattern", true);
  h.normalize_pattern_projection = model.get<bool>("normalize_pattern_projection", true);
  h.normalize_hopfield_space = model.get<bool>("normalize_hopfield_space", false);
  const bool affine = model.get<bool>("normalize_affine", true);
  h.normalize_stored_pattern_affine = affine && h.normalize_stored_pattern;
  h.normalize_state_pattern_affine = affine && h.normalize_state_pattern;
  h.normalize_pattern_projection_affine = affine && h.normalize_pattern_projection;
  h.normalize_hopfield_space_affine = affine && h.normalize_hopfield_space;
  h.dropout = model.get<double>("association_dropout", 0.0);
  check(h.dropout >= 0 && h.dropout < 1,
        "[config] model.association_dropout: must lie in [0, 1), got {}", h.dropout);
  return o;
}

// --- the model ----------------------------------------------------------------------------------
MilHopfield::MilHopfield(MilHopfieldOptions options, Generator* gen)
    : nn::Module("MilHopfield"), options_(std::move(options)) {
  const MilHopfieldOptions& o = options_;
  check(o.num_features > 0, "[MilHopfield] num_features must be positive, got {}", o.num_features);
  check(!o.embedding.empty(), "[MilHopfield] the embedding needs at least one layer");
  check(o.quantity > 0, "[MilHopfield] quantity must be positive, got {}", o.quantity);
  embedding = register_module("embedding", std::make_shared<nn::Sequential>());
  int64_t in = o.num_features;
  for (int64_t width : o.embedding) {
    check(width > 0, "[MilHopfield] embedding widths must be positive, got {}", width);
    embedding->push_back(std::make_shared<nn::Linear>(in, width, true, gen));
    embedding->push_back(std::make_shared<nn::Activation>("relu"));
    in = width;
  }
  energy::HopfieldOptions h = o.hopfield;
  h.input_size = in;
  try {
    pooling = register_module("pooling",
                              std::make_shared<energy::HopfieldPooling>(h, o.quantity, true, gen));
  } catch (const Error& e) {
    fail("[MilHopfield] pooling: {}", e.what());
  }
  classifier = register_module(
      "classifier",
      std::make_shared<nn::Linear>(o.quantity * pooling->hopfield().output_size(), 1, true, gen));
}

Tensor MilHopfield::embed(const Tensor& instances) {
  check(instances.ndim() == 3 && instances.shape(2) == options_.num_features,
        "[MilHopfield] instances must be (bags, instances, {}), got {}", options_.num_features,
        shape_str(instances.shape()));
  return embedding->forward(instances);
}

Tensor MilHopfield::forward(const Tensor& instances, const Tensor& padding_mask) {
  const Tensor h = embed(instances);                                           // (B, N, E)
  const Tensor z = padding_mask.defined() ? pooling->forward(h, padding_mask)  // (B, Q·out)
                                          : pooling->forward(h);
  const Tensor logit = classifier->forward(relu(z));  // (B, 1)
  return reshape(logit, {logit.shape(0)});
}

Tensor MilHopfield::forward(const Tensor& instances) { return forward(instances, Tensor()); }

Tensor MilHopfield::attention(const Tensor& instances, const Tensor& padding_mask) {
  return pooling->association_matrix(embed(instances), padding_mask);  // (B, H, Q, N)
}

// --- the task -----------------------------------------------------------------------------------
namespace {

data::MilBags read_bags(Config section) {
  section.get_choice("type", "mil", {"mil"});
  const std::string root = section.get<std::string>("root", "");
  const std::string file = section.get<std::string>("file");
  const std::string format = section.get_choice("format", "auto", {"auto", "mat", "musk_csv"});
  const std::filesystem::path path =
      root.empty() ? std::filesystem::path(file) : std::filesystem::path(root) / file;
  const bool mat = format == "mat" || (format == "auto" && path.extension() == ".mat");
  return mat ? data::read_mil_mat(path.string()) : data::read_musk_csv(path.string());
}

class MilHopfieldTask : public train::Task {
 public:
  explicit MilHopfieldTask(const train::TaskContext& ctx) : device_(ctx.device) {
    Config config = ctx.config;
    Config data_section = config.section("data");
    data::MilBags bags = read_bags(data_section);
    const std::vector<int64_t> labels = bags.labels();
    for (int64_t c : {int64_t{0}, int64_t{1}}) {
      check(std::count(labels.begin(), labels.end(), c) > 0,
            "[mil_hopfield] the data has no {} bag: a classifier needs both classes",
            c == 1 ? "positive" : "negative");
    }

    // The split: the fold [cv] names, else a stratified hold-out.
    if (const auto cv = train::read_cv_options(config)) {
      fold_ = train::cv_fold(labels, *cv);
    } else {
      const double fraction = data_section.get<double>("test_fraction", 0.1);
      check(fraction > 0 && fraction < 1, "[config] data.test_fraction: must lie in (0, 1), got {}",
            fraction);
      fold_ = data::stratified_train_test_split(labels, fraction, ctx.seed);
    }
    if (data_section.get<bool>("standardize", true)) {
      bags = data::standardize(bags, data::fit_feature_scaler(bags, fold_.train));
    }
    const double bag_dropout = data_section.get<double>("bag_dropout", 0.0);
    check(bag_dropout >= 0 && bag_dropout < 1,
          "[config] data.bag_dropout: must lie in [0, 1), got {}", bag_dropout);

    Config model = config.section("model");
    const MilHopfieldOptions options = mil_hopfield_options(model, bags.num_features);
    int64_t positives = 0;
    for (int64_t i : fold_.train) positives += labels[static_cast<size_t>(i)];
    const auto negatives = static_cast<int64_t>(fold_.train.size()) - positives;
    double pos_weight = 1.0;
    if (model.has("pos_weight")) {
      try {
        pos_weight = model.get<double>("pos_weight");
      } catch (const Error&) {
        model.get_choice("pos_weight", "balanced", {"balanced"});
        check(positives > 0, "[mil_hopfield] pos_weight = \"balanced\": no positive training bag");
        pos_weight = static_cast<double>(negatives) / static_cast<double>(positives);
      }
    } else {
      model.get<double>("pos_weight", 1.0);  // record the default
    }
    check(pos_weight > 0 && std::isfinite(pos_weight),
          "[config] model.pos_weight: must be positive, got {}", pos_weight);
    if (pos_weight != 1.0) pos_weight_ = scalar(pos_weight, Dtype::f32).to(device_);

    net_ = std::make_shared<MilHopfield>(options);
    net_->to(device_);
    bags_ = std::make_shared<data::MilBags>(std::move(bags));
    all_ = data::mil_dataset(*bags_);
    train_base_ = data::subset(all_, fold_.train);
    train_ = data::bag_dropout(train_base_, bag_dropout, data::derive_seed(ctx.seed, 0x6d696c));
  }

  nn::Module& model() override { return *net_; }
  data::DatasetPtr<data::Example> train_data() override { return train_; }
  void set_epoch(int64_t epoch) override { train_->set_epoch(epoch); }
  data::Collate collate() const override { return data::collate_bags; }

  Tensor loss(const data::Example& batch, train::Metrics& logs) override {
    const Tensor logits = net_->forward(batch.at("instances"), batch.at("padding_mask"));
    const Tensor target = batch.at("label").astype(Dtype::f32);
    const auto z = logits.to_vector<double>();
    const auto y = batch.at("label").to_vector<int64_t>();
    double correct = 0;
    for (size_t i = 0; i < z.size(); ++i) correct += (z[i] > 0 ? 1 : 0) == y[i];
    logs["accuracy"] = correct / static_cast<double>(z.size());
    return nn::bce_with_logits(logits, target, pos_weight_);
  }

  std::vector<std::string> splits() const override { return {"test", "train", "all"}; }

  train::Metrics evaluate(const std::string& split) override {
    const Scored s = score(split, /*with_attention=*/false);
    const Tensor logits = from_vector(s.logits, {static_cast<int64_t>(s.logits.size())});
    const Tensor target =
        from_vector(std::vector<double>(s.labels.begin(), s.labels.end()), logits.shape());
    const double loss =
        nn::bce_with_logits(logits, target,
                            pos_weight_.defined() ? pos_weight_.to(Device::cpu()) : Tensor())
            .item<double>();
    std::vector<int64_t> predicted;
    for (double z : s.logits) predicted.push_back(z > 0 ? 1 : 0);
    train::Metrics m{{"accuracy", data::accuracy(predicted, s.labels)}, {"loss", loss}};
    // ROC-AUC needs both classes (a stratified fold always has them).
    const bool both = std::count(s.labels.begin(), s.labels.end(), 1) > 0 &&
                      std::count(s.labels.begin(), s.labels.end(), 0) > 0;
    m["roc_auc"] = both ? data::roc_auc(s.logits, s.labels) : NAN;
    return m;
  }

  std::string primary_metric() const override { return "roc_auc"; }

  std::string attention_json(const std::string& split) override {
    const Scored s = score(split, /*with_attention=*/true);
    using nlohmann::json;
    const MilHopfieldOptions& o = net_->options();
    json bags = json::array();
    for (size_t k = 0; k < s.indices.size(); ++k) {
      const data::MilBag& bag = bags_->bags[static_cast<size_t>(s.indices[k])];
      json b;
      b["index"] = s.indices[k];
      b["id"] = bag.id;
      b["label"] = s.labels[k];
      b["logit"] = s.logits[k];
      b["probability"] = 1.0 / (1.0 + std::exp(-s.logits[k]));
      b["instances"] = bag.instances.shape(0);
      b["attention"] = s.attention[k];
      if (bag.instance_labels.defined()) {
        b["instance_labels"] = bag.instance_labels.to_vector<int64_t>();
      }
      bags.push_back(std::move(b));
    }
    json j;
    j["model"] = "mil_hopfield";
    j["split"] = split;
    j["heads"] = o.hopfield.num_heads;
    j["quantity"] = o.quantity;
    j["layout"] = "attention[head][query][instance]";
    j["bags"] = std::move(bags);
    return j.dump();
  }

 private:
  /// The model's outputs on a split's bags, in bag order.
  struct Scored {
    std::vector<int64_t> indices, labels;
    std::vector<double> logits;
    /// Per bag: heads × quantity × its instances.
    std::vector<std::vector<std::vector<std::vector<double>>>> attention;
  };

  Scored score(const std::string& split, bool with_attention) {
    Scored s;
    if (split == "test") {
      s.indices = fold_.test;
    } else if (split == "train") {
      s.indices = fold_.train;
    } else if (split == "all") {
      s.indices.resize(static_cast<size_t>(bags_->size()));
      for (size_t i = 0; i < s.indices.size(); ++i) s.indices[i] = static_cast<int64_t>(i);
    } else {
      fail("[mil_hopfield] unknown split '{}' (this model has: test, train, all)", split);
    }
    constexpr size_t kBatch = 64;
    for (size_t start = 0; start < s.indices.size(); start += kBatch) {
      std::vector<data::Example> items;
      for (size_t k = start; k < std::min(start + kBatch, s.indices.size()); ++k)
        items.push_back(all_->get(s.indices[k]));
      const data::Example batch = data::collate_bags(items);
      const Tensor x = batch.at("instances").to(device_);
      const Tensor mask = batch.at("padding_mask").to(device_);
      for (double z : net_->forward(x, mask).to_vector<double>()) s.logits.push_back(z);
      for (int64_t y : batch.at("label").to_vector<int64_t>()) s.labels.push_back(y);
      if (!with_attention) continue;
      const Tensor a = net_->attention(x, mask).to(Device::cpu()).astype(Dtype::f64);
      const int64_t heads = a.shape(1), queries = a.shape(2), n_max = a.shape(3);
      const auto values = a.contiguous().to_vector<double>();
      const auto sizes = batch.at("sizes").to_vector<int64_t>();
      for (size_t b = 0; b < sizes.size(); ++b) {
        std::vector<std::vector<std::vector<double>>> per_head(static_cast<size_t>(heads));
        for (int64_t h = 0; h < heads; ++h) {
          for (int64_t q = 0; q < queries; ++q) {
            const auto* row =
                values.data() + ((static_cast<int64_t>(b) * heads + h) * queries + q) * n_max;
            per_head[static_cast<size_t>(h)].emplace_back(row, row + sizes[b]);
          }
        }
        s.attention.push_back(std::move(per_head));
      }
    }
    return s;
  }

  Device device_;
  data::Fold fold_;
  std::shared_ptr<data::MilBags> bags_;
  data::DatasetPtr<data::Example> all_, train_base_;
  std::shared_ptr<data::BagDropout> train_;
  std::shared_ptr<MilHopfield> net_;
  Tensor pos_weight_;  // () f32 on the device; undefined for 1
};

BASIN_REGISTER_TASK("mil_hopfield",
                    "multiple-instance bag classifier with Hopfield pooling (data.type = \"mil\")",
                    [](const train::TaskContext& ctx) {
                      return std::make_unique<MilHopfieldTask>(ctx);
                    });

}  // namespace
}  // namespace basin::zoo
