// model.type = "mlp": a multilayer perceptron classifier on a labelled image dataset, the first
// model through the training pipeline.
//
//   [model]
//   type = "mlp"
//   hidden = [256, 128]       # hidden widths
//   activation = "relu"       # relu, gelu, tanh, sigmoid, silu
//   dropout = 0.0
//   label_smoothing = 0.0
//   [data]                    # see data/catalog.h
//   type = "mnist"
#include <memory>

#include "core/ops.h"
#include "data/catalog.h"
#include "data/metrics.h"
#include "models/nn/layers.h"
#include "models/nn/loss.h"
#include "models/train/task.h"

namespace basin::zoo {
namespace {

class MlpClassifier : public train::Task {
 public:
  explicit MlpClassifier(const train::TaskContext& ctx) : device_(ctx.device) {
    Config config = ctx.config;
    Config model = config.section("model");
    data_ = data::labelled_images(config.section("data"), ctx.seed);
    const auto hidden = model.get<std::vector<int64_t>>("hidden", {256, 128});
    for (int64_t h : hidden)
      check(h > 0, "[config] model.hidden: widths must be positive, got {}", h);
    const std::string activation =
        model.get_choice("activation", "relu", {"relu", "gelu", "tanh", "sigmoid", "silu"});
    const double dropout = model.get<double>("dropout", 0.0);
    check(dropout >= 0 && dropout < 1, "[config] model.dropout: must lie in [0, 1), got {}",
          dropout);
    label_smoothing_ = model.get<double>("label_smoothing", 0.0);
    check(label_smoothing_ >= 0 && label_smoothing_ <= 1,
          "[config] model.label_smoothing: must lie in [0, 1], got {}", label_smoothing_);
    std::vector<int64_t> widths = {numel(data_.image_shape)};
    widths.insert(widths.end(), hidden.begin(), hidden.end());
    widths.push_back(data_.num_classes);
    mlp_ = std::make_shared<nn::MLP>(widths, activation, dropout);
    mlp_->to(device_);
  }

  nn::Module& model() override { return *mlp_; }
  data::DatasetPtr<data::Example> train_data() override { return data_.train; }
  void set_epoch(int64_t epoch) override { data_.set_epoch(epoch); }

  Tensor logits(const Tensor& images) {
    return mlp_->forward(reshape(images, {images.shape(0), -1}));
  }

  Tensor loss(const data::Example& batch, train::Metrics& logs) override {
    const Tensor& labels = batch.at("label");
    Tensor out = logits(batch.at("image"));
    logs["accuracy"] = data::accuracy_from_logits(out, labels);
    return nn::cross_entropy(out, labels, Tensor(), label_smoothing_);
  }

  train::Metrics evaluate(const std::string& split) override {
    check(split == "test", "[mlp] unknown split '{}' (this model has: test)", split);
    auto batches = data::batch(data_.test, 1000, /*drop_last=*/false);
    std::vector<int64_t> predicted, labels;
    double loss_sum = 0;
    for (int64_t b = 0; b < batches->size(); ++b) {
      data::Example batch = batches->get(b);
      Tensor out = logits(batch.at("image").to(device_));
      Tensor label = batch.at("label").to(device_);
      loss_sum +=
          nn::cross_entropy(out, label, Tensor(), 0.0, -100, nn::Reduction::sum).item<double>();
      for (int64_t p : argmax(out, -1).to_vector<int64_t>()) predicted.push_back(p);
      for (int64_t l : label.to_vector<int64_t>()) labels.push_back(l);
    }
    const auto n = static_cast<double>(labels.size());
    return {{"accuracy", data::accuracy(predicted, labels)},
            {"macro_f1", data::macro_f1(predicted, labels, data_.num_classes)},
            {"loss", loss_sum / n}};
  }

  std::string primary_metric() const override { return "accuracy"; }

 private:
  Device device_;
  data::LabelledData data_;
  std::shared_ptr<nn::MLP> mlp_;
  double label_smoothing_ = 0;
};

BASIN_REGISTER_TASK("mlp", "MLP classifier on a labelled image dataset (data.type)",
                    [](const train::TaskContext& ctx) {
                      return std::make_unique<MlpClassifier>(ctx);
                    });

}  // namespace
}  // namespace basin::zoo
