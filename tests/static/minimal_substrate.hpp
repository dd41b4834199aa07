// SPDX-License-Identifier: MIT
// The smallest substrate the protocol accepts, written as a user would from docs/guide.md
// ("Writing a substrate"): a resistive crossbar with a fixed read-out gain, whose weights are
// conductances scaled by that gain. It models `pnn::substrate` with nothing but the required
// members plus the optional transposed read, and tests/substrate.cpp trains it through the
// network, `train`, and every family of rules — proof that the concept is sufficient.
#pragma once

#include <cstddef>
#include <vector>

#include <pnn/physics/concepts.hpp>

namespace user {

struct gained_crossbar {
  using value_type = float;
  static constexpr const char* name = "gained_crossbar";
  struct params {};

  template <std::size_t In, std::size_t Out>
  class tile {
   public:
    using value_type = float;
    static constexpr float gain = 2.0f;  // trans-impedance gain: W = gain · G

    void resize(std::size_t in, std::size_t out) {
      in_ = in;
      out_ = out;
      g_.assign(in * out, 0.0f);
      b_.assign(out, 0.0f);
    }
    std::size_t in_size() const { return in_; }
    std::size_t out_size() const { return out_; }

    // Column currents: y_j = gain · Σ_i G_ji x_i.
    void read(const float* x, std::size_t n, float* y, pnn::rng&) const {
      for (std::size_t r = 0; r < n; ++r)
        for (std::size_t j = 0; j < out_; ++j) {
          float s = 0;
          for (std::size_t i = 0; i < in_; ++i) s += g_[j * in_ + i] * x[r * in_ + i];
          y[r * out_ + j] = gain * s;
        }
    }
    // Driving the columns and sensing the rows reads Wᵀ.
    void read_transposed(const float* dy, std::size_t n, float* dx, pnn::rng&) const {
      for (std::size_t r = 0; r < n; ++r)
        for (std::size_t i = 0; i < in_; ++i) {
          float s = 0;
          for (std::size_t j = 0; j < out_; ++j) s += g_[j * in_ + i] * dy[r * out_ + j];
          dx[r * in_ + i] = gain * s;
        }
    }
    // ΔW arrives in weight units; the conductances move by ΔW / gain.
    template <class U>
    void program(const U& update, pnn::rng&) {
      for (std::size_t k = 0; k < g_.size(); ++k) g_[k] -= update.weight_data()[k] / gain;
      for (std::size_t j = 0; j < out_; ++j) b_[j] -= update.bias_data()[j];
    }
    void set_weights(const float* w, const float* b, pnn::rng&) {
      for (std::size_t k = 0; k < g_.size(); ++k) g_[k] = w[k] / gain;
      for (std::size_t j = 0; j < out_; ++j) b_[j] = b[j];
    }
    void effective_weights(float* w) const {
      for (std::size_t k = 0; k < g_.size(); ++k) w[k] = gain * g_[k];
    }
    // Its trainable parameters are the conductances: the flat-vector form of the protocol.
    std::size_t parameter_count() const { return g_.size() + out_; }
    void get_parameters(double* p) const {
      for (std::size_t k = 0; k < g_.size(); ++k) p[k] = g_[k];
      for (std::size_t j = 0; j < out_; ++j) p[g_.size() + j] = b_[j];
    }
    void set_parameters(const double* p) {
      for (std::size_t k = 0; k < g_.size(); ++k) g_[k] = float(p[k]);
      for (std::size_t j = 0; j < out_; ++j) b_[j] = float(p[g_.size() + j]);
    }
    const float* bias_data() const { return b_.data(); }

   private:
    std::size_t in_ = 0, out_ = 0;
    std::vector<float> g_{}, b_{};
  };
};

static_assert(pnn::substrate<gained_crossbar> && pnn::transposed_readable<gained_crossbar>);
static_assert(!pnn::dense_tile<gained_crossbar::tile<3, 2>>, "its parameters are conductances, not W");

}  // namespace user
