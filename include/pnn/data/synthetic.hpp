// SPDX-License-Identifier: MIT
/// \file
/// \brief Small synthetic tasks (XOR, two moons, spirals, Gaussian blobs, teacher–student
/// regression) as `dataset`s, reproducible from a `pnn::rng`.
///
/// Every sample is drawn from the `rng` passed in, which advances, so equal generator states give
/// equal data sets and successive calls give fresh samples. Where a task has hidden structure of
/// its own (the blob centres, the teacher network), that structure is drawn from a child stream
/// `rng.split(...)`, which depends on the generator's seed and stream but not on how far it has
/// advanced: two calls with one generator therefore sample the *same* task, which is how a test
/// set for a train set is drawn.
///
/// Classification sets interleave their classes (sample i has class i mod classes, or the
/// pattern noted), so every prefix, e.g. `take(d, n)`, is balanced; shuffle when training.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xtensor.hpp>

#include <pnn/core/rng.hpp>
#include <pnn/data/dataset.hpp>
#include <pnn/core/error.hpp>

namespace pnn::data {

namespace detail {

/// Reports a bad argument: `pnn::error`, or the violation handler and a trap without exceptions.
[[noreturn]] inline void synthetic_fail(const std::string& what) {
#if PNN_HAS_EXCEPTIONS
  ::pnn::throw_error(what);
#else
  if (::pnn::detail::g_violation_handler != nullptr) ::pnn::detail::g_violation_handler(what.c_str(), "", 0);
  ::pnn::detail::trap();
#endif
}

inline constexpr double pi = 3.14159265358979323846;
/// `split` ids of the hidden structure of a task (arbitrary, distinct, unlikely to be chosen by
/// a user splitting the same generator for other purposes).
inline constexpr std::uint64_t blob_centres_stream = 0x626c6f622d63656eull;  // "blob-cen"
inline constexpr std::uint64_t teacher_stream = 0x74656163686572ull;         // "teacher"

/// A classification set of n samples with `features` inputs and `classes` one-hot targets.
inline dataset make_classification(std::size_t n, std::size_t features, std::size_t classes, std::string name) {
  dataset d;
  d.inputs = xt::xtensor<float, 2>::from_shape({n, features});
  d.targets = xt::zeros<float>({n, classes});
  d.labels = xt::xtensor<std::int32_t, 1>::from_shape({n});
  d.name = std::move(name);
  return d;
}

/// Records class `c` for sample `i` in both `labels` and the one-hot `targets`.
inline void set_class(dataset& d, std::size_t i, std::size_t c) {
  d.labels(i) = static_cast<std::int32_t>(c);
  d.targets(i, c) = 1.0f;
}

/// Fails unless `value` is finite and ≥ 0.
inline void require_non_negative(float value, const char* what, const char* where) {
  if (!(std::isfinite(value) && value >= 0.0f)) {
    synthetic_fail(std::string("pnn::data::") + where + ": " + what + " must be finite and >= 0, got " +
                   std::to_string(value));
  }
}

/// Fails unless `value` ≥ 1.
inline void require_positive(std::size_t value, const char* what, const char* where) {
  if (value == 0) synthetic_fail(std::string("pnn::data::") + where + ": " + what + " must be at least 1");
}

}  // namespace detail

/// \brief XOR: points at the corners (±1, ±1) plus N(0, noise²) jitter, class 1 where the signs
/// differ (2 inputs, 2 classes; corners in the order (−,−), (+,−), (−,+), (+,+) repeating).
/// \pre noise is finite and ≥ 0.
[[nodiscard]] inline dataset xor_task(std::size_t n, rng& g, float noise = 0.1f) {
  detail::require_non_negative(noise, "noise", "xor_task");
  dataset d = detail::make_classification(n, 2, 2, "xor");
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t a = i & 1u;
    const std::size_t b = (i >> 1) & 1u;
    d.inputs(i, 0) = (a != 0 ? 1.0f : -1.0f) + noise * g.normal();
    d.inputs(i, 1) = (b != 0 ? 1.0f : -1.0f) + noise * g.normal();
    detail::set_class(d, i, a ^ b);
  }
  return d;
}

/// \brief Two interleaved half circles of radius 1 (2 inputs, 2 classes), centred on the
/// origin, plus N(0, noise²) jitter on each coordinate.
/// \pre noise is finite and ≥ 0.
[[nodiscard]] inline dataset two_moons(std::size_t n, rng& g, float noise = 0.1f) {
  detail::require_non_negative(noise, "noise", "two_moons");
  dataset d = detail::make_classification(n, 2, 2, "two-moons");
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = i % 2;
    const double t = detail::pi * g.uniform_double();
    // Upper moon (cos t, sin t); lower moon (1 − cos t, ½ − sin t); then shift by (−½, −¼) so the
    // pair is centred, which is what an unbiased first layer sees best.
    const double x = c == 0 ? std::cos(t) : 1.0 - std::cos(t);
    const double y = c == 0 ? std::sin(t) : 0.5 - std::sin(t);
    d.inputs(i, 0) = static_cast<float>(x - 0.5) + noise * g.normal();
    d.inputs(i, 1) = static_cast<float>(y - 0.25) + noise * g.normal();
    detail::set_class(d, i, c);
  }
  return d;
}

/// \brief `classes` interleaved Archimedean spiral arms in the unit disc, each winding `turns`
/// times around the origin, plus N(0, noise²) jitter (2 inputs, `classes` classes).
/// \pre classes ≥ 1; turns and noise finite, noise ≥ 0.
[[nodiscard]] inline dataset spirals(std::size_t n, rng& g, std::size_t classes = 2, float turns = 1.5f,
                                     float noise = 0.05f) {
  detail::require_positive(classes, "classes", "spirals");
  detail::require_non_negative(noise, "noise", "spirals");
  if (!std::isfinite(turns)) detail::synthetic_fail("pnn::data::spirals: turns must be finite");
  dataset d = detail::make_classification(n, 2, classes, "spirals");
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = i % classes;
    const double r = g.uniform_double();  // radius and position along the arm
    const double arm = static_cast<double>(c) / static_cast<double>(classes);  // phase offset of arm c
    const double angle = 2.0 * detail::pi * (static_cast<double>(turns) * r + arm);
    d.inputs(i, 0) = static_cast<float>(r * std::cos(angle)) + noise * g.normal();
    d.inputs(i, 1) = static_cast<float>(r * std::sin(angle)) + noise * g.normal();
    detail::set_class(d, i, c);
  }
  return d;
}

/// \brief Isotropic Gaussian clusters: `classes` centres with N(0, 1) coordinates, samples at
/// centre + N(0, spread²) per feature (`features` inputs, `classes` classes). The centres come
/// from `g.split(...)`, so repeated calls with one generator sample the same clusters.
/// \pre features ≥ 1, classes ≥ 1, spread finite and ≥ 0.
[[nodiscard]] inline dataset gaussian_blobs(std::size_t n, std::size_t features, std::size_t classes, rng& g,
                                            float spread = 0.3f) {
  detail::require_positive(features, "features", "gaussian_blobs");
  detail::require_positive(classes, "classes", "gaussian_blobs");
  detail::require_non_negative(spread, "spread", "gaussian_blobs");
  rng centre_rng = g.split(detail::blob_centres_stream);
  std::vector<float> centres(classes * features);
  for (float& v : centres) v = centre_rng.normal();
  dataset d = detail::make_classification(n, features, classes, "gaussian-blobs");
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = i % classes;
    for (std::size_t j = 0; j < features; ++j) d.inputs(i, j) = centres[c * features + j] + spread * g.normal();
    detail::set_class(d, i, c);
  }
  return d;
}

/// \brief Teacher–student regression: inputs x ~ N(0, I) (`inputs` features), targets = a random
/// teacher network's output plus N(0, noise²) (`outputs` columns); `labels` stays empty.
///
/// The teacher is linear, y = W x + b, when `hidden` is 0, else y = W₂ tanh(W₁ x + b₁) + b₂ with
/// `hidden` units. Weights are N(0, 1/fan-in), so every unit has unit variance; biases N(0, 0.1²).
/// The teacher comes from `g.split(...)`: repeated calls with one generator share the teacher.
/// \pre inputs ≥ 1, outputs ≥ 1, noise finite and ≥ 0.
[[nodiscard]] inline dataset teacher_student(std::size_t n, std::size_t inputs, std::size_t outputs, rng& g,
                                             std::size_t hidden = 0, float noise = 0.0f) {
  detail::require_positive(inputs, "inputs", "teacher_student");
  detail::require_positive(outputs, "outputs", "teacher_student");
  detail::require_non_negative(noise, "noise", "teacher_student");

  // Teacher layers: (fan_in → fan_out) with row-major weights fan_out × fan_in.
  struct layer {
    std::size_t fan_in, fan_out;
    std::vector<double> w, b;
  };
  rng teacher_rng = g.split(detail::teacher_stream);
  const auto make_layer = [&](std::size_t fan_in, std::size_t fan_out) {
    layer l{fan_in, fan_out, std::vector<double>(fan_in * fan_out), std::vector<double>(fan_out)};
    const double scale = 1.0 / std::sqrt(static_cast<double>(fan_in));
    for (double& v : l.w) v = scale * teacher_rng.normal_double();
    for (double& v : l.b) v = 0.1 * teacher_rng.normal_double();
    return l;
  };
  std::vector<layer> teacher;
  if (hidden == 0) {
    teacher.push_back(make_layer(inputs, outputs));
  } else {
    teacher.push_back(make_layer(inputs, hidden));
    teacher.push_back(make_layer(hidden, outputs));
  }

  dataset d;
  d.inputs = xt::xtensor<float, 2>::from_shape({n, inputs});
  d.targets = xt::xtensor<float, 2>::from_shape({n, outputs});
  d.name = "teacher-student";
  std::vector<double> a, z;
  for (std::size_t i = 0; i < n; ++i) {
    a.resize(inputs);
    for (std::size_t j = 0; j < inputs; ++j) {
      d.inputs(i, j) = g.normal();
      a[j] = static_cast<double>(d.inputs(i, j));  // the teacher sees exactly the stored input
    }
    for (std::size_t k = 0; k < teacher.size(); ++k) {
      const layer& l = teacher[k];
      z.assign(l.b.begin(), l.b.end());
      for (std::size_t o = 0; o < l.fan_out; ++o) {
        for (std::size_t j = 0; j < l.fan_in; ++j) z[o] += l.w[o * l.fan_in + j] * a[j];
      }
      if (k + 1 < teacher.size()) {
        for (double& v : z) v = std::tanh(v);
      }
      a.swap(z);
    }
    for (std::size_t o = 0; o < outputs; ++o) d.targets(i, o) = static_cast<float>(a[o]) + noise * g.normal();
  }
  return d;
}

}  // namespace pnn::data
