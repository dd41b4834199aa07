// SPDX-License-Identifier: MIT
// Must NOT compile: a substrate whose tile lacks `set_weights`. The build reports it in one
// short error naming the member (tests/CMakeLists.txt checks the message and its size).
#include <pnn/nn/network.hpp>

struct no_set_weights {
  using value_type = float;
  static constexpr const char* name = "no_set_weights";
  struct params {};
  template <std::size_t In, std::size_t Out>
  struct tile {
    using value_type = float;
    void resize(std::size_t, std::size_t) {}
    std::size_t in_size() const { return In; }
    std::size_t out_size() const { return Out; }
    void read(const float*, std::size_t, float*, pnn::rng&) const {}
    template <class U>
    void program(const U&, pnn::rng&) {}
    void effective_weights(float*) const {}
    float* weight_data() { return w; }
    const float* weight_data() const { return w; }
    float* bias_data() { return w; }
    const float* bias_data() const { return w; }
    float w[16]{};
  };
};

int main() {
  pnn::network<pnn::dense<3, 2, no_set_weights>> net({3, 2}, pnn::seed{1});
  return int(net.input_size());
}
