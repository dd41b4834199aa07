// SPDX-License-Identifier: MIT
/// \file
/// \brief Fashion-MNIST and MNIST from their IDX files, plus the helpers that turn IDX pairs
/// into a `dataset` (`from_idx`, `one_hot`, `subset`, `take`).
///
/// Fashion-MNIST (Xiao, Rasul & Vollgraf, arXiv:1708.07747): 60 000 training and 10 000 test
/// grey-scale 28 × 28 images of clothing in 10 classes, in MNIST's IDX layout. Debian ships it in
/// `dataset-fashion-mnist` under /usr/share/datasets/fashion-mnist.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include <xtensor/xtensor.hpp>

#include <pnn/data/dataset.hpp>
#include <pnn/data/idx.hpp>

namespace pnn::data {

/// \brief Where `fashion_mnist()` looks by default: `$PNN_DATA_DIR` when set and non-empty, else
/// /usr/share/datasets/fashion-mnist (Debian's `dataset-fashion-mnist`).
[[nodiscard]] inline std::filesystem::path default_dir() {
  const char* env = std::getenv("PNN_DATA_DIR");
  if (env != nullptr && *env != '\0') return env;
  return "/usr/share/datasets/fashion-mnist";
}

/// \brief One-hot encoding: row i has a 1 in column `labels[i]` and 0 elsewhere (n × classes).
/// \pre Every label is in [0, classes) (else `pnn::error`).
[[nodiscard]] inline xt::xtensor<float, 2> one_hot(const xt::xtensor<std::int32_t, 1>& labels, std::size_t classes) {
  const std::size_t n = labels.size();
  xt::xtensor<float, 2> t = xt::zeros<float>({n, classes});
  for (std::size_t i = 0; i < n; ++i) {
    const std::int32_t c = labels(i);
    if (c < 0 || static_cast<std::size_t>(c) >= classes) {
      detail::fail("pnn::data::one_hot: label " + std::to_string(c) + " at index " + std::to_string(i) +
                   " is outside [0, " + std::to_string(classes) + ")");
    }
    t(i, static_cast<std::size_t>(c)) = 1.0f;
  }
  return t;
}

/// \brief Samples [first, first + count) of `d` as a new data set (copies; same name).
/// \pre first + count <= d.size(), and `d` is consistent: `targets` has d.size() rows, `labels`
/// is empty or has d.size() entries (else `pnn::error`).
[[nodiscard]] inline dataset subset(const dataset& d, std::size_t first, std::size_t count) {
  if (d.targets.shape()[0] != d.size() || (d.labels.size() != 0 && d.labels.size() != d.size())) {
    detail::fail("pnn::data::subset: '" + d.name + "' is inconsistent: " + std::to_string(d.size()) + " inputs, " +
                 std::to_string(d.targets.shape()[0]) + " targets, " + std::to_string(d.labels.size()) + " labels");
  }
  if (first > d.size() || count > d.size() - first) {
    detail::fail("pnn::data::subset: samples [" + std::to_string(first) + ", " + std::to_string(first) + " + " +
                 std::to_string(count) + ") out of range of '" + d.name + "' with " + std::to_string(d.size()) +
                 " samples");
  }
  // Rows are contiguous in row-major storage, so a subset is one block copy per tensor.
  const auto copy_rows = [&](const xt::xtensor<float, 2>& from) {
    const std::size_t cols = from.shape()[1];
    auto to = xt::xtensor<float, 2>::from_shape({count, cols});
    std::copy_n(from.data() + first * cols, count * cols, to.data());
    return to;
  };
  dataset out;
  out.inputs = copy_rows(d.inputs);
  out.targets = copy_rows(d.targets);
  // Regression sets carry no labels; keep them empty rather than failing on the range.
  if (d.labels.size() != 0) {
    out.labels = xt::xtensor<std::int32_t, 1>::from_shape({count});
    std::copy_n(d.labels.data() + first, count, out.labels.data());
  }
  out.name = d.name;
  return out;
}

/// \brief The first min(n, d.size()) samples of `d` (a quick run on part of a data set).
[[nodiscard]] inline dataset take(const dataset& d, std::size_t n) { return subset(d, 0, n < d.size() ? n : d.size()); }

namespace detail {

/// The body of `from_idx` over arrays already loaded (their `source` names the files).
inline dataset classification_from_idx(const idx_array& images, const idx_array& labels, std::size_t classes,
                                       std::string name) {
  const std::string where = "pnn::data::from_idx: ";
  if (classes == 0) fail(where + "classes must be at least 1");
  if (images.rank() < 2) {
    fail(where + "'" + images.source + "' has " + std::to_string(images.rank()) +
         " dimension(s); an image file needs at least 2 (samples x pixels)");
  }
  if (labels.rank() != 1) {
    fail(where + "'" + labels.source + "' has " + std::to_string(labels.rank()) +
         " dimensions; a label file has exactly 1");
  }
  if (labels.type == idx_type::f32 || labels.type == idx_type::f64) {
    fail(where + "'" + labels.source + "' holds " + idx_type_name(labels.type) + " values; labels must be integers");
  }
  if (images.shape[0] != labels.shape[0]) {
    fail(where + "'" + images.source + "' holds " + std::to_string(images.shape[0]) + " images but '" +
         labels.source + "' holds " + std::to_string(labels.shape[0]) + " labels");
  }

  dataset d;
  d.name = std::move(name);
  d.labels = labels.to_xtensor<std::int32_t, 1>();
  for (std::size_t i = 0; i < d.labels.size(); ++i) {
    const std::int32_t c = d.labels(i);
    if (c < 0 || static_cast<std::size_t>(c) >= classes) {
      fail(where + "'" + labels.source + "': label " + std::to_string(c) + " at index " + std::to_string(i) +
           " is outside 0.." + std::to_string(classes - 1) + " (" + std::to_string(classes) + " classes)");
    }
  }
  d.targets = one_hot(d.labels, classes);

  if (const auto* bytes = std::get_if<std::vector<std::uint8_t>>(&images.values)) {
    const std::size_t rows = images.shape[0];
    std::size_t cols = 1;
    for (std::size_t j = 1; j < images.rank(); ++j) cols *= images.shape[j];
    d.inputs = xt::xtensor<float, 2>::from_shape({rows, cols});
    float* dst = d.inputs.data();
    for (std::size_t i = 0; i < bytes->size(); ++i) dst[i] = static_cast<float>((*bytes)[i]) * (1.0f / 255.0f);
  } else {
    d.inputs = images.to_matrix<float>();
  }
  return d;
}

}  // namespace detail

/// \brief A classification data set from an IDX image file and an IDX label file.
///
/// Images become `inputs` (n × product of the remaining extents): unsigned bytes are scaled by
/// 1/255 into [0, 1], other element types are converted to float unscaled. Labels become
/// `labels` and one-hot `targets` (n × classes).
/// \pre classes ≥ 1; the image file has rank ≥ 2, the label file rank 1 with an integer element
/// type, both hold the same number of samples, and every label is in [0, classes) (else
/// `pnn::error`, naming the file).
[[nodiscard]] inline dataset from_idx(const std::filesystem::path& images_path,
                                      const std::filesystem::path& labels_path, std::size_t classes,
                                      std::string name = {}) {
  return detail::classification_from_idx(load_idx(images_path), load_idx(labels_path), classes, std::move(name));
}

namespace detail {

/// The first of `names` (without and with .gz) present in `dir`; the plain name if none is, so
/// that `load_idx` reports it as missing.
inline std::filesystem::path find_idx_file(const std::filesystem::path& dir, std::initializer_list<const char*> names) {
  std::error_code ec;
  for (const char* base : names) {
    for (const char* ext : {"", ".gz"}) {
      const auto p = dir / (std::string(base) + ext);
      if (std::filesystem::is_regular_file(p, ec)) return p;
    }
  }
  return dir / *names.begin();
}

/// Loads one MNIST-layout split (28 × 28 byte images, labels 0..9) from `dir`.
inline dataset load_mnist_layout(const std::filesystem::path& dir, std::initializer_list<const char*> image_names,
                                 std::initializer_list<const char*> label_names, const std::string& name,
                                 const char* function, std::size_t max_samples = static_cast<std::size_t>(-1)) {
  const auto images_path = find_idx_file(dir, image_names);
  const auto labels_path = find_idx_file(dir, label_names);
  const idx_array images = load_idx(images_path, max_samples);
  if (images.rank() != 3 || images.shape[1] != 28 || images.shape[2] != 28) {
    std::string dims;
    for (std::size_t j = 0; j < images.rank(); ++j) dims += (j == 0 ? "" : " x ") + std::to_string(images.shape[j]);
    fail(std::string("pnn::data::") + function + ": '" + images_path.string() + "' has shape " + dims +
         "; expected n x 28 x 28 images");
  }
  return classification_from_idx(images, load_idx(labels_path, max_samples), 10, name);
}

/// What a missing Fashion-MNIST directory's message adds.
inline constexpr const char* fashion_mnist_hint =
    " (install it with `apt-get install dataset-fashion-mnist`, or set PNN_DATA_DIR to a directory holding the "
    "Fashion-MNIST IDX files)";

/// Loads the train and test splits of an MNIST-layout data set from `dir`.
inline split load_mnist_pair(const std::filesystem::path& dir, const std::string& name, const char* function,
                             const char* hint, std::size_t max_train = static_cast<std::size_t>(-1)) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    fail(std::string("pnn::data::") + function + ": data directory '" + dir.string() + "' does not exist" + hint);
  }
  split s;
  s.train = load_mnist_layout(dir, {"train-images-idx3-ubyte", "train-images.idx3-ubyte"},
                              {"train-labels-idx1-ubyte", "train-labels.idx1-ubyte"}, name, function, max_train);
  s.test = load_mnist_layout(dir, {"t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"},
                             {"t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"}, name, function);
  return s;
}

}  // namespace detail

/// \brief Fashion-MNIST from `dir`: train (60 000) and test (10 000) samples, `inputs` n × 784
/// pixel intensities in [0, 1], `labels` 0..9 and one-hot `targets` n × 10, name "fashion-mnist".
///
/// Accepts the files gzip-compressed (as Debian and the original site ship them) or
/// decompressed: train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...
/// \throws pnn::error when the directory or a file is missing or malformed, image and label
/// counts differ, a label is outside 0..9, or the images are not 28 × 28.
[[nodiscard]] inline split fashion_mnist(const std::filesystem::path& dir = default_dir()) {
  return detail::load_mnist_pair(dir, "fashion-mnist", "fashion_mnist", detail::fashion_mnist_hint);
}

/// \brief The first `max_train` training samples of Fashion-MNIST from `dir` (all of them when
/// the file holds fewer) and the whole test split: `take(fashion_mnist(dir).train, max_train)`
/// without decompressing, converting and checking the training images it would drop (a run on
/// 20 000 images loads in about half the time).
/// \throws pnn::error as `fashion_mnist` does, for the part it reads.
[[nodiscard]] inline split fashion_mnist(const std::filesystem::path& dir, std::size_t max_train) {
  return detail::load_mnist_pair(dir, "fashion-mnist", "fashion_mnist", detail::fashion_mnist_hint, max_train);
}

/// \brief The original MNIST digits from `dir` (same file names and layout as Fashion-MNIST),
/// name "mnist".
/// \throws pnn::error as `fashion_mnist` does.
[[nodiscard]] inline split mnist(const std::filesystem::path& dir) {
  return detail::load_mnist_pair(dir, "mnist", "mnist", " (it should hold the MNIST IDX files)");
}

}  // namespace pnn::data
