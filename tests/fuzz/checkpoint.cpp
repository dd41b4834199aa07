// SPDX-License-Identifier: MIT
// libFuzzer target: the checkpoint reader (pnn::read_state) on arbitrary bytes, into a network
// with a pulsed crossbar, variation, drift and stuck-at maps, and an Adam rule state. Inputs whose
// last byte is odd get both CRC-32s repaired first, so the fuzzer also reaches the entry parser
// behind the checksums. A load either fails with a message (and leaves the destination as it
// was) or succeeds; after a success the network must still run a forward pass or throw
// pnn::error. Built and run by tools/fuzz.sh (Clang, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <pnn/pnn.hpp>
#include <pnn/physics/crossbar.hpp>

using namespace pnn;

namespace {
using xbar = physics::crossbar<physics::devices::soft_bounds>;
using net_t = network<dense<4, 3, physics::digital, noise::variation, act::tanh>,
                      dense<3, 2, xbar, noise::chain<noise::drift, noise::stuck_at>, act::identity>>;
using rule_t = learn::backprop<optim::adam>;

struct subject {
  net_t net{seed{1}};
  rule_t rule{};
  rule_t::state_type<net_t> state = rule.make_state(net);
  subject() {
    // One step so that the rule's state holds moments.
    xt::xtensor<float, 2> x = xt::ones<float>({2, 4}) * 0.5f, t = xt::zeros<float>({2, 2});
    rng g(2);
    rule.step(net, state, x, t, loss::mse{}, g);
  }
};

subject& fresh() {
  static subject s;
  return s;
}

void put_u32(std::byte* p, std::uint32_t v) {
  for (int k = 0; k < 4; ++k) p[k] = static_cast<std::byte>((v >> (8 * k)) & 0xffu);
}
}  // namespace

// With PNN_FUZZ_SEED_DIR set, writes a valid checkpoint there as the corpus's first seed.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("PNN_FUZZ_SEED_DIR")) {
    subject& s = fresh();
    io::save_parts(std::string(dir) + "/valid.pnn", state_part{"network", s.net}, state_part{"rule", s.state});
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static subject s = fresh();
  std::vector<std::byte> in(size);
  if (size != 0) std::memcpy(in.data(), data, size);
  if (size >= 32 && (data[size - 1] & 1u) != 0) {
    std::uint64_t pb = 0;
    for (int k = 0; k < 8; ++k) pb |= std::uint64_t(data[16 + k]) << (8 * k);
    if (pb <= size - 32) put_u32(in.data() + 24, crc32(std::span<const std::byte>(in.data() + 32, std::size_t(pb))));
    put_u32(in.data() + 28, pnn::detail::header_crc(in.data()));
  }
  subject work = s;
  const auto before = io::to_bytes(state_part{"network", work.net}, state_part{"rule", work.state});
  const state_status st = read_state(std::span<const std::byte>(in), state_part{"network", work.net}, state_part{"rule", work.state});
  if (!st.ok) {
    if (st.message().empty()) __builtin_trap();  // a failure always says why
    if (io::to_bytes(state_part{"network", work.net}, state_part{"rule", work.state}) != before) __builtin_trap();
    return 0;
  }
  try {
    xt::xtensor<float, 2> x = xt::ones<float>({2, 4});
    rng g(3);
    (void)forward(work.net, x, g);
  } catch (const pnn::error&) {
  }
  return 0;
}
