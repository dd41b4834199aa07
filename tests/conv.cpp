// SPDX-License-Identifier: MIT
// Convolutional layers on substrate tiles: the read against a direct convolution, pooling,
// the patch unfolding's adjoint, gradients by finite differences (double), FA with B = Kᵀ is
// backprop, the rules that run on convolutions, crossbar kernels, threads, and bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include <pnn/core/threads.hpp>
#include <pnn/learn/backprop.hpp>
#include <pnn/learn/check_gradients.hpp>
#include <pnn/learn/direct_feedback_alignment.hpp>
#include <pnn/learn/feedback_alignment.hpp>
#include <pnn/learn/forward_forward.hpp>
#include <pnn/learn/forward_gradient.hpp>
#include <pnn/learn/perturbation.hpp>
#include <pnn/io/checkpoint.hpp>
#include <pnn/learn/physics_aware.hpp>
#include <pnn/nn/conv.hpp>
#include <pnn/noise/noise.hpp>
#include <pnn/physics/crossbar.hpp>
#include <pnn/train/in_silico.hpp>

#include "support/ff_reference.hpp"

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_conv {

using namespace pnn;

namespace {
using dd = physics::basic_digital<double>;

template <class T>
xt::xtensor<T, 2> random_batch(std::size_t n, std::size_t k, std::uint64_t s) {
  rng g(s);
  xt::xtensor<T, 2> x({n, k});
  for (auto& v : x) v = static_cast<T>(g.normal_double());
  return x;
}

template <class T>
xt::xtensor<T, 2> one_hot(std::size_t n, std::size_t k) {
  xt::xtensor<T, 2> t = xt::zeros<T>({n, k});
  for (std::size_t i = 0; i < n; ++i) t(i, (i * 5 + 2) % k) = T(1);
  return t;
}

// y[s][oy][ox][o] = b[o] + Σ_{ky,kx,c} K[o][(ky·k + kx)·C + c] · x[s][oy·S+ky−P][ox·S+kx−P][c], directly.
template <class Shape, class L>
std::vector<double> direct_convolution(const L& l, const xt::xtensor<double, 2>& x) {
  const std::size_t n = x.shape()[0];
  constexpr std::size_t H = Shape::height, W = Shape::width, C = Shape::in_channels, O = Shape::out_channels;
  constexpr std::size_t K = Shape::kernel, S = Shape::stride, P = Shape::padding;
  std::vector<double> y(n * Shape::positions * O);
  const double* w = l.tile.weight_data();
  const double* b = l.tile.bias_data();
  for (std::size_t s = 0; s < n; ++s)
    for (std::size_t oy = 0; oy < Shape::out_height; ++oy)
      for (std::size_t ox = 0; ox < Shape::out_width; ++ox)
        for (std::size_t o = 0; o < O; ++o) {
          double acc = b[o];
          for (std::size_t ky = 0; ky < K; ++ky)
            for (std::size_t kx = 0; kx < K; ++kx)
              for (std::size_t c = 0; c < C; ++c) {
                const long iy = long(oy * S + ky) - long(P), ix = long(ox * S + kx) - long(P);
                if (iy < 0 || ix < 0 || iy >= long(H) || ix >= long(W)) continue;
                acc += w[o * Shape::patch_size + (ky * K + kx) * C + c] *
                       x(s, (std::size_t(iy) * W + std::size_t(ix)) * C + c);
              }
          y[((s * Shape::out_height + oy) * Shape::out_width + ox) * O + o] = acc;
        }
  return y;
}

using shape_a = conv_shape<7, 6, 2, 3, 3, 2, 1>;  // odd sizes, stride 2, padding 1

// Mean loss of the last 5 of `steps` training steps over that of the first 5.
template <class Rule, class Net, class X, class Y>
double loss_ratio(Rule& rule, Net& net, const X& x, const Y& t, std::uint64_t steps) {
  double first = 0, last = 0;
  for (std::uint64_t s = 0; s < steps; ++s) {
    rng gs(s);
    const auto r = rule.step(net, x, t, loss::softmax_cross_entropy{}, gs);
    if (s < 5) first += r.loss;
    if (s + 5 >= steps) last += r.loss;
  }
  return last / first;
}
}  // namespace

TEST_CASE("conv2d reads like a direct convolution (stride, padding, channels-last)", "[conv]") {
  STATIC_REQUIRE(shape_a::out_height == 4);
  STATIC_REQUIRE(shape_a::out_width == 3);
  using layer_t = conv2d<shape_a, dd, noise::none, act::tanh>;
  STATIC_REQUIRE(layer_t::in_extent == 7 * 6 * 2);
  STATIC_REQUIRE(layer_t::out_extent == 4 * 3 * 3);
  network<layer_t> net(seed{4});
  // A bias that is not zero, so its per-channel broadcast is checked.
  for (std::size_t o = 0; o < 3; ++o) layer<0>(net).tile.bias_data()[o] = 0.1 * double(o + 1);
  const auto x = random_batch<double>(3, layer_t::in_extent, 1);
  const auto y = forward(net, x);
  const auto ref = direct_convolution<shape_a>(layer<0>(net), x);
  REQUIRE(y.size() == ref.size());
  for (std::size_t k = 0; k < ref.size(); ++k) CHECK(y.data()[k] == Approx(std::tanh(ref[k])).margin(1e-12));
}

TEST_CASE("max and average pooling follow the activation; a trailing remainder is dropped", "[conv]") {
  using shape = conv_shape<7, 7, 1, 2, 2>;  // 6 × 6 outputs → pooled by 4 to 1 × 1, by 2 to 3 × 3
  using max_t = conv2d<shape, dd, noise::none, act::tanh, pool::max<4>>;
  using avg_t = conv2d<shape, dd, noise::none, act::tanh, pool::avg<2>>;
  STATIC_REQUIRE(max_t::out_extent == 1 * 1 * 2);
  STATIC_REQUIRE(avg_t::out_extent == 3 * 3 * 2);
  network<max_t> mnet(seed{2});
  network<avg_t> anet(seed{2});
  const auto x = random_batch<double>(2, shape::in_size, 3);
  const auto ym = forward(mnet, x), ya = forward(anet, x);
  const auto ref = direct_convolution<shape>(layer<0>(mnet), x);  // same seed: same kernels
  for (std::size_t s = 0; s < 2; ++s)
    for (std::size_t c = 0; c < 2; ++c) {
      double m = -2;
      for (std::size_t p = 0; p < 4; ++p)
        for (std::size_t q = 0; q < 4; ++q) m = std::max(m, std::tanh(ref[((s * 6 + p) * 6 + q) * 2 + c]));
      CHECK(ym(s, c) == Approx(m).margin(1e-12));
      for (std::size_t py = 0; py < 3; ++py)
        for (std::size_t px = 0; px < 3; ++px) {
          double a = 0;
          for (std::size_t wy = 0; wy < 2; ++wy)
            for (std::size_t wx = 0; wx < 2; ++wx)
              a += std::tanh(ref[((s * 6 + 2 * py + wy) * 6 + 2 * px + wx) * 2 + c]);
          CHECK(ya(s, (py * 3 + px) * 2 + c) == Approx(a / 4).margin(1e-12));
        }
    }
}

namespace {
// Max pooling's error routing checked against a scalar reference: each window's error goes to
// its first maximum in row-major order (ties are made common by rounding the pre-activations),
// times f'(a) there; every other position, including rows and columns no window covers, gets 0
// (exactly 0: the output starts as NaN, so every entry must be written).
template <class T, class Layer>
void check_max_pool_delta(std::size_t n, std::uint64_t s) {
  using dims = typename Layer::shape_type;
  constexpr std::size_t S = Layer::pool_type::window, C = dims::out_channels, OH = dims::out_height, OW = dims::out_width;
  constexpr std::size_t PH = OH / S, PW = OW / S, pre = OH * OW * C, out = PH * PW * C;
  const Layer l{};
  const auto ar = random_batch<T>(n, pre, s);
  std::vector<T> a(ar.begin(), ar.end()), up(n * out), h(n * out), ref(n * pre, T(0));
  for (auto& v : a) v = std::round(v * T(2)) / T(2);  // few levels: many ties
  rng g(s + 1);
  for (auto& v : up) v = static_cast<T>(g.normal_double());
  for (std::size_t k = 0; k < n; ++k)
    for (std::size_t py = 0; py < PH; ++py)
      for (std::size_t px = 0; px < PW; ++px)
        for (std::size_t c = 0; c < C; ++c) {
          std::size_t best = ((k * OH + py * S) * OW + px * S) * C + c;
          for (std::size_t wy = 0; wy < S; ++wy)
            for (std::size_t wx = 0; wx < S; ++wx) {
              const std::size_t i = ((k * OH + py * S + wy) * OW + px * S + wx) * C + c;
              if (a[i] > a[best]) best = i;
            }
          const std::size_t o = ((k * PH + py) * PW + px) * C + c;
          h[o] = std::tanh(a[best]);
          ref[best] = up[o] * (T(1) - h[o] * h[o]);
        }
  std::vector<T> delta(n * pre, std::numeric_limits<T>::quiet_NaN());  // every entry must be written
  l.output_delta(up.data(), a.data(), h.data(), n, delta.data());
  // Where the error goes is exact. Its value may differ from this scalar product by the rounding
  // of h² (the layer takes f' = 1 − h² a register at a time, which a compiler may fuse into one
  // FMA or not): a few ulps of 1 times |up| < 6, not of the value.
  for (std::size_t i = 0; i < delta.size(); ++i) {
    REQUIRE((delta[i] == T(0)) == (ref[i] == T(0)));
    REQUIRE(delta[i] == Approx(ref[i]).epsilon(0).margin(16 * std::numeric_limits<T>::epsilon()));
  }
}
}  // namespace

TEST_CASE("max pooling sends each window's error to its first maximum, ties and uncovered edges included",
          "[conv]") {
  // 7 × 7 outputs (an uncovered last row and column), 3 channels: windows in registers and a tail.
  check_max_pool_delta<double, conv2d<conv_shape<8, 8, 1, 3, 2>, dd, noise::none, act::tanh, pool::max<2>>>(3, 21);
  check_max_pool_delta<double, conv2d<conv_shape<12, 12, 1, 5, 3>, dd, noise::none, act::tanh, pool::max<2>>>(2, 22);
  // 1, 12 and 20 channels: each way a position's channels are gathered and scattered.
  check_max_pool_delta<double, conv2d<conv_shape<8, 8, 1, 1, 2>, dd, noise::none, act::tanh, pool::max<2>>>(2, 24);
  check_max_pool_delta<double, conv2d<conv_shape<6, 6, 1, 12, 2>, dd, noise::none, act::tanh, pool::max<2>>>(2, 25);
  check_max_pool_delta<double, conv2d<conv_shape<6, 6, 1, 20, 2>, dd, noise::none, act::tanh, pool::max<2>>>(2, 26);
  // float: 22 × 22 outputs, 3 channels, 33 windows a row (two 16-lane registers and a tail).
  check_max_pool_delta<float, conv2d<conv_shape<24, 24, 1, 3, 3>, physics::digital, noise::none, act::tanh,
                                     pool::max<2>>>(2, 23);
  // LeNet-5's first layer: 6 channels, so a row's left/right pattern repeats every 3 registers.
  check_max_pool_delta<float, conv2d<conv_shape<28, 28, 1, 6, 5, 1, 2>, physics::digital, noise::none, act::tanh,
                                     pool::max<2>>>(3, 27);
  // Windows of 3 (the general search over gathered entries): 8 × 8 outputs leave a row and column.
  check_max_pool_delta<double, conv2d<conv_shape<10, 10, 1, 4, 3>, dd, noise::none, act::tanh, pool::max<3>>>(2, 28);
  check_max_pool_delta<float, conv2d<conv_shape<20, 20, 1, 6, 3>, physics::digital, noise::none, act::tanh,
                                     pool::max<3>>>(2, 29);
}

TEST_CASE("unfolding patches and summing them back are adjoint", "[conv]") {
  using layer_t = conv2d<shape_a, dd>;
  const std::size_t n = 2;
  const auto x = random_batch<double>(n, layer_t::in_extent, 5);
  const layer_t l{};
  const auto p = random_batch<double>(n * l.positions(), l.kernel_inputs(), 6);
  std::vector<double> px(p.size()), pt(x.size());
  l.patches(x.data(), n, px.data());
  l.accumulate_patches(p.data(), n, pt.data());
  double lhs = 0, rhs = 0;
  for (std::size_t k = 0; k < p.size(); ++k) lhs += px[k] * p.data()[k];
  for (std::size_t k = 0; k < x.size(); ++k) rhs += x.data()[k] * pt[k];
  CHECK(lhs == Approx(rhs).epsilon(1e-12));
}

TEST_CASE("backprop through convolutions and pooling matches finite differences (double)", "[conv][gradcheck]") {
  using c1 = conv2d<conv_shape<8, 8, 2, 3, 3, 1, 1>, dd, noise::none, act::tanh, pool::max<2>>;  // → 4×4×3
  using c2 = conv2d<conv_shape<4, 4, 3, 4, 3, 1, 0>, dd, noise::none, act::sigmoid, pool::avg<2>>;  // → 1×1×4
  using c3 = conv2d<conv_shape<4, 4, 3, 2, 2, 2, 0>, dd, noise::none, act::tanh>;  // stride 2, no pool
  SECTION("max pool, then average pool, then dense") {
    network<c1, c2, dense<4, 3, dd, noise::none, act::identity>> net(seed{7});
    const auto x = random_batch<double>(3, c1::in_extent, 8);
    const auto r = check_gradients(net, x, one_hot<double>(3, 3), loss::softmax_cross_entropy{}, {.epsilon = 1e-6});
    CHECK(r.max_error < 1e-6);
  }
  SECTION("strided convolution without pooling") {
    network<c1, c3, dense<8, 3, dd, noise::none, act::identity>> net(seed{9});
    const auto x = random_batch<double>(2, c1::in_extent, 10);
    const auto r = check_gradients(net, x, random_batch<double>(2, 3, 11), loss::mse{}, {.epsilon = 1e-6});
    CHECK(r.max_error < 1e-6);
  }
}

namespace {
using conv_hidden = conv2d<conv_shape<6, 6, 1, 4, 3, 1, 1>, dd, noise::none, act::tanh, pool::max<2>>;  // → 3×3×4
using conv_hidden2 = conv2d<conv_shape<3, 3, 4, 5, 2>, dd, noise::none, act::tanh>;                   // → 2×2×5
using small_net = network<conv_hidden, conv_hidden2, dense<20, 3, dd, noise::none, act::identity>>;
}  // namespace

TEST_CASE("feedback alignment on convolutions with B = Kᵀ equals backprop; DFA and sign symmetry run", "[conv][fa]") {
  small_net net(seed{12});
  const auto x = random_batch<double>(5, conv_hidden::in_extent, 13);
  const auto t = one_hot<double>(5, 3);
  learn::feedback_alignment<> fa;
  learn::backprop<> bp;
  for (std::size_t l = 1; l < 3; ++l) {
    const auto shape = fa.feedback_shape(net, l);  // not a structured binding: Clang 14 cannot capture one
    const std::size_t rows = shape.first, cols = shape.second;
    xt::xtensor<double, 2> b({rows, cols});
    net.for_each_layer([&](const auto& ly, std::size_t i) {
      if (i != l) return;
      const std::size_t in = ly.tile.in_size(), out = ly.tile.out_size();
      REQUIRE(rows == in);
      REQUIRE(cols == out);
      for (std::size_t o = 0; o < out; ++o)
        for (std::size_t k = 0; k < in; ++k) b(k, o) = ly.tile.weight_data()[o * in + k];
    });
    fa.set_feedback(net, l, b);
  }
  rng g1(3), g2(3);
  const auto a = fa.estimate(net, x, t, loss::softmax_cross_entropy{}, g1);
  const auto e = bp.estimate(net, x, t, loss::softmax_cross_entropy{}, g2);
  for (std::size_t l = 0; l < 3; ++l) {
    double d = 0;
    for (std::size_t k = 0; k < a[l].weight.size(); ++k)
      d = std::max(d, std::abs(a[l].weight.data()[k] - e[l].weight.data()[k]));
    CHECK(d < 1e-12);
  }
  // Random feedback kernels, sign symmetry and DFA give estimates shaped like the kernels whose
  // top layer is backprop's.
  learn::feedback_alignment<> ss{{.feedback = learn::feedback_kind::sign_symmetry}};
  learn::direct_feedback_alignment<> dfa;
  rng g3(3), g4(3);
  const auto s = ss.estimate(net, x, t, loss::softmax_cross_entropy{}, g3);
  const auto d = dfa.estimate(net, x, t, loss::softmax_cross_entropy{}, g4);
  CHECK(cosine(s, e, 2) == Approx(1.0));
  CHECK(cosine(d, e, 2) == Approx(1.0));
  CHECK(s[0].weight.shape() == e[0].weight.shape());
  CHECK(d[0].weight.shape() == e[0].weight.shape());
  CHECK(d[0].weight.shape()[1] == 9);  // the kernel matrix: 3·3·1 inputs
  // Sign symmetry's feedback has the sign of the kernels: its first conv update points along
  // backprop's (a loose check of the carry through patches).
  CHECK(cosine(s, e, 0) > 0.3);
}

TEST_CASE("weight perturbation on convolutions is an unbiased estimate of the kernel gradient", "[conv][perturbation]") {
  small_net net(seed{21});
  const auto x = random_batch<double>(4, conv_hidden::in_extent, 22);
  const auto t = one_hot<double>(4, 3);
  learn::backprop<> bp;
  rng gb(1);
  const auto e = bp.estimate(net, x, t, loss::softmax_cross_entropy{}, gb);
  learn::weight_perturbation<> wp{{.sigma = 1e-4, .num_perturbations = 4000}};
  rng gw(2);
  const auto w = wp.estimate(net, x, t, loss::softmax_cross_entropy{}, gw);
  CHECK(cosine(w, e) > 0.9);
  CHECK(cosine(w, e, 0) > 0.8);  // the convolution's kernels, not only the dense layer
}

TEST_CASE("node perturbation on convolutions: one node at a time is backprop up to O(sigma^2), Gaussian directions "
          "are unbiased (double)",
          "[conv][perturbation]") {
  // Max pooling, then a strided convolution without pooling, then dense: the perturbed nodes
  // are every position before pooling.
  small_net net(seed{31});
  const auto x = random_batch<double>(3, conv_hidden::in_extent, 32);
  const auto t = one_hot<double>(3, 3);
  learn::backprop<> bp;
  rng gb(1);
  const auto e = bp.estimate(net, x, t, loss::softmax_cross_entropy{}, gb);
  learn::node_perturbation<> coord{{.sigma = 1e-5, .directions = learn::node_directions::coordinate}};
  rng gc(2);
  const auto c = coord.estimate(net, x, t, loss::softmax_cross_entropy{}, gc);
  for (std::size_t l = 0; l < 3; ++l) {
    INFO("layer " << l);
    REQUIRE(c[l].weight.shape() == e[l].weight.shape());
    double d = 0, scale = 0;
    for (std::size_t k = 0; k < e[l].weight.size(); ++k) {
      d = std::max(d, std::abs(c[l].weight.data()[k] - e[l].weight.data()[k]));
      scale = std::max(scale, std::abs(e[l].weight.data()[k]));
    }
    for (std::size_t k = 0; k < e[l].bias.size(); ++k) d = std::max(d, std::abs(c[l].bias.data()[k] - e[l].bias.data()[k]));
    CHECK(scale > 1e-3);
    CHECK(d < 1e-8 * std::max(1.0, scale));
  }
  // Gaussian directions: the mean of many draws points along the gradient, kernels included.
  learn::node_perturbation<> gauss{{.sigma = 1e-4, .num_perturbations = 3000}};
  rng gg(3);
  const auto w = gauss.estimate(net, x, t, loss::softmax_cross_entropy{}, gg);
  CHECK(cosine(w, e) > 0.95);
  CHECK(cosine(w, e, 0) > 0.9);
  CHECK(cosine(w, e, 1) > 0.9);
}

TEST_CASE("forward gradient on convolutions: the JVP is the directional derivative, activity and weight tangents "
          "are unbiased (double)",
          "[conv][forward_gradient]") {
  small_net net(seed{41});
  const auto x = random_batch<double>(3, conv_hidden::in_extent, 42);
  const auto t = one_hot<double>(3, 3);
  learn::backprop<> bp;
  rng gb(1);
  const auto e = bp.estimate(net, x, t, loss::softmax_cross_entropy{}, gb);
  // Forward mode through max pooling, a strided convolution and a dense layer: ∇L·v exactly,
  // and the loss's central difference along v.
  gradients<small_net> v(net);
  rng gv(5);
  for (std::size_t i = 0; i < 3; ++i) {
    for (auto& w : v[i].weight) w = gv.normal_double();
    for (auto& w : v[i].bias) w = gv.normal_double();
  }
  learn::forward_gradient<> fg;
  rng g(2);
  const double jvp = fg.directional_derivative(net, x, t, loss::softmax_cross_entropy{}, v, g);
  CHECK(jvp == Approx(e.dot(v)).epsilon(1e-10));
  auto loss_along = [&](double eps) {
    small_net m = net;
    m.for_each_layer([&](auto& l, std::size_t li) {
      for (std::size_t q = 0; q < v[li].weight.size(); ++q) l.tile.weight_data()[q] += eps * v[li].weight.data()[q];
      for (std::size_t q = 0; q < v[li].bias.size(); ++q) l.tile.bias_data()[q] += eps * v[li].bias.data()[q];
    });
    rng gf(0);
    const auto y = forward(m, x, gf);
    return loss::softmax_cross_entropy{}.value(y.data(), t.data(), 3, 3);
  };
  const double fd = (loss_along(1e-6) - loss_along(-1e-6)) / 2e-6;
  CHECK(std::abs(jvp - fd) < 1e-7 * std::max(1.0, std::abs(fd)));
  // Tangents at every position's pre-activation, and of the kernels: their means point along
  // the gradient.
  learn::forward_gradient<> activity{{.num_tangents = 3000}};
  rng ga(3);
  const auto a = activity.estimate(net, x, t, loss::softmax_cross_entropy{}, ga);
  CHECK(cosine(a, e) > 0.95);
  CHECK(cosine(a, e, 0) > 0.9);
  CHECK(cosine(a, e, 1) > 0.9);
  learn::forward_gradient<> weight{{.mode = learn::forward_gradient_mode::weight, .num_tangents = 3000}};
  rng gw(4);
  CHECK(cosine(weight.estimate(net, x, t, loss::softmax_cross_entropy{}, gw), e) > 0.9);
  // Local losses read each hidden layer's pooled output.
  learn::forward_gradient<> local{{.local_losses = true}};
  rng gl(5);
  const auto lo = local.estimate(net, x, t, loss::softmax_cross_entropy{}, gl);
  CHECK(std::isfinite(lo.dot(lo)));
  CHECK(lo.dot(lo) > 0);
}

namespace {
// Layer `li`'s forward-forward loss from its definition (tests/support/ff_reference.hpp); only
// the layers' reads are the library's (`forward`, checked against a direct convolution above).
double ff_local_loss(const small_net& net, const xt::xtensor<double, 2>& x, const xt::xtensor<double, 2>& t,
                     std::size_t li, bool cosine_goodness, double theta, double alpha) {
  return pnn_test::ff_local_loss(net, x, t, li, cosine_goodness, theta, alpha,
                                 [](const auto& l, const std::vector<double>& cur, std::size_t n, std::vector<double>& h) {
                                   std::vector<double> a(n * detail::pre_activation_size(l));
                                   rng g(0);
                                   l.forward(cur.data(), n, a.data(), h.data(), g);
                                 });
}
}  // namespace

TEST_CASE("forward-forward on convolutions: each layer's update is the gradient of its own goodness loss, kernels "
          "included (double)",
          "[conv][forward_forward]") {
  // Max pooling, then a strided convolution, then dense: a convolution's goodness is that of its
  // pooled output, its error returns through the pooling, its kernel sums over the patches.
  const auto x = random_batch<double>(4, conv_hidden::in_extent, 52);
  xt::xtensor<double, 2> t = xt::zeros<double>({4, 3});
  for (std::size_t r = 0; r < 4; ++r) t(r, r % 2) = 1;  // labels 0 and 1 only
  for (auto kind : {learn::ff_goodness::energy, learn::ff_goodness::cosine}) {
    const bool cos = kind == learn::ff_goodness::cosine;
    const double theta = cos ? 0.1 : 0.4;
    small_net net(seed{51});
    learn::forward_forward<> ff{{.goodness = kind, .threshold = theta, .sharpness = 3.0, .num_classes = 2}};
    rng g(3);
    const auto est = ff.estimate(net, x, t, loss::mse{}, g);
    const double eps = 1e-6;
    net.for_each_layer([&](auto& l, std::size_t li) {
      double worst = 0, scale = 0;
      auto probe = [&](double& w, double analytic) {
        const double w0 = w;
        w = w0 + eps;
        const double lp = ff_local_loss(net, x, t, li, cos, theta, 3.0);
        w = w0 - eps;
        const double lm = ff_local_loss(net, x, t, li, cos, theta, 3.0);
        w = w0;
        const double fd = (lp - lm) / (2 * eps);
        worst = std::max(worst, std::abs(fd - analytic));
        scale = std::max(scale, std::abs(fd));
      };
      REQUIRE(est[li].weight.size() == l.tile.out_size() * l.tile.in_size());
      for (std::size_t q = 0; q < est[li].weight.size(); ++q) probe(l.tile.weight_data()[q], est[li].weight.data()[q]);
      for (std::size_t q = 0; q < est[li].bias.size(); ++q) probe(l.tile.bias_data()[q], est[li].bias.data()[q]);
      INFO("goodness " << (cos ? "cosine" : "energy") << ", layer " << li << ": max |fd − ff| " << worst << " (scale "
                       << scale << ")");
      CHECK(scale > 1e-4);
      CHECK(worst < 1e-7 * std::max(1.0, scale));
    });
  }
  // Training on a fixed batch lowers the goodness loss; prediction scores every label.
  small_net net(seed{53});
  learn::forward_forward<optim::adam> ff{{.optimizer = {.learning_rate = 0.03f}, .num_classes = 3}};
  const auto tx = random_batch<double>(12, conv_hidden::in_extent, 54);
  const auto tt = one_hot<double>(12, 3);
  CHECK(loss_ratio(ff, net, tx, tt, 60) < 0.9);  // 0.83; the negatives are redrawn every step
  ff.parameters().step_accuracy = false;  // count the samples whose positive beats their negative
  rng gs(60);
  CHECK(ff.step(net, tx, tt, loss::mse{}, gs).correct >= 9);  // 10 of 12 (7 at the start)
  std::vector<std::size_t> labels(12, 99);
  rng gp(7);
  ff.predict(net, tx.data(), 12, labels.data(), gp);
  for (std::size_t r : labels) CHECK(r < 3);
}

TEST_CASE("convolutions on a crossbar: the ideal array equals digital, pulsed training lowers the loss",
          "[conv][crossbar]") {
  using ideal_xbar = physics::crossbar<physics::devices::ideal>;
  using shape = conv_shape<6, 6, 1, 4, 3, 1, 1>;
  using xnet = network<conv2d<shape, ideal_xbar, noise::none, act::tanh, pool::max<2>>,
                       dense<36, 3, ideal_xbar, noise::none, act::identity>>;
  using dnet = network<conv2d<shape, physics::digital, noise::none, act::tanh, pool::max<2>>,
                       dense<36, 3, physics::digital, noise::none, act::identity>>;
  xnet a(seed{3}, ideal_xbar::params::ideal());
  dnet b(seed{3});
  const auto x = random_batch<float>(6, shape::in_size, 1);
  const auto t = one_hot<float>(6, 3);
  rng g1(5), g2(5);
  const auto ya = forward(a, x, g1), yb = forward(b, x, g2);
  for (std::size_t k = 0; k < ya.size(); ++k) CHECK(ya.data()[k] == Approx(yb.data()[k]).margin(1e-5));
  learn::backprop<> ra{{.optimizer = {.learning_rate = 0.1f}}}, rb{{.optimizer = {.learning_rate = 0.1f}}};
  for (std::uint64_t s = 0; s < 4; ++s) {
    rng ga(s), gb(s);
    ra.step(a, x, t, loss::mse{}, ga);
    rb.step(b, x, t, loss::mse{}, gb);
  }
  const auto za = forward(a, x, g1), zb = forward(b, x, g2);
  for (std::size_t k = 0; k < za.size(); ++k) CHECK(za.data()[k] == Approx(zb.data()[k]).margin(1e-4));

  // A soft-bounds array with the default periphery, trained by stochastic pulse trains driven
  // by the patches and their errors.
  using xbar = physics::crossbar<physics::devices::soft_bounds>;
  using pnet = network<conv2d<shape, xbar, noise::none, act::tanh, pool::max<2>>,
                       dense<36, 3, xbar, noise::none, act::identity>>;
  pnet p(seed{8});
  learn::backprop<> rp{{.optimizer = {.learning_rate = 0.05f}}};
  CHECK(loss_ratio(rp, p, x, t, 60) < 0.8);
}

TEST_CASE("in-silico deployment and physics-aware training run on convolutional networks", "[conv][physics_aware]") {
  using xbar = physics::crossbar<physics::devices::soft_bounds>;
  using shape = conv_shape<6, 6, 1, 4, 3, 1, 1>;
  using pnet = network<conv2d<shape, xbar, noise::none, act::tanh, pool::max<2>>,
                       dense<36, 3, xbar, noise::none, act::identity>>;
  using twin = rebind_t<pnet, physics::digital>;
  STATIC_REQUIRE(std::is_same_v<typename twin::template layer_type<0>,
                                conv2d<shape, physics::digital, noise::none, act::tanh, pool::max<2>>>);
  const auto x = random_batch<float>(8, shape::in_size, 2);
  const auto t = one_hot<float>(8, 3);
  twin tw(seed{4});
  pnet p(seed{4});
  rng gd(1);
  deploy(tw, p, gd);
  // The array realises the twin's kernels to within its programming precision.
  double err = 0;
  for (std::size_t k = 0; k < 36; ++k)
    err = std::max(err, double(std::abs(layer<0>(p).tile.weight_data()[k] - layer<0>(tw).tile.weight_data()[k])));
  CHECK(err < 0.05);
  learn::physics_aware<> pat{{.optimizer = {.learning_rate = 0.05f}}};
  CHECK(loss_ratio(pat, p, x, t, 40) < 0.8);
}

TEST_CASE("convolutional training gives the same weights on 1, 2 and 3 threads", "[conv][threads]") {
  using shape = conv_shape<12, 12, 1, 8, 5, 1, 2>;
  using net_t = network<conv2d<shape, physics::digital, noise::none, act::relu, pool::max<2>>,
                        dense<6 * 6 * 8, 10, physics::digital, noise::none, act::identity>>;
  // 128 images: enough values that the unfolding, pooling and error routing split over
  // samples too (a thread takes at least ~64k values), not only the GEMMs.
  const auto x = random_batch<float>(128, shape::in_size, 4);
  const auto t = one_hot<float>(128, 10);
  auto run = [&](unsigned threads) {
    set_num_threads(threads);
    net_t net(seed{5});
    learn::backprop<optim::momentum> r{{.optimizer = {.learning_rate = 0.05f}}};
    for (std::uint64_t s = 0; s < 3; ++s) {
      rng g(s);
      r.step(net, x, t, loss::softmax_cross_entropy{}, g);
    }
    set_num_threads(0);
    const auto& k = layer<0>(net).tile;
    return std::vector<float>(k.weight_data(), k.weight_data() + 8 * 25);
  };
  const auto one = run(1);
  CHECK(run(2) == one);
  CHECK(run(3) == one);
}

namespace {
// Reads a batch of 128 images through an exact, noiseless kernel (`Fast`, read directly or in
// blocks) on 1, 2 and 3 threads, and through the same kernel with zero read noise (`Whole`, all
// patches unfolded and read at once): the result must not depend on the thread count, and
// must equal the whole read (bitwise where `bitwise`). The biases are not zero (a direct read
// adds them sample by sample). Then 127 images, which 3 threads split into runs of 43: a
// sample's activations must not depend on where its thread's run of samples ends.
template <class Shape>
void check_fast_read(bool expect_direct, bool bitwise) {
  using fast = conv2d<Shape, physics::digital, noise::none, act::tanh, pool::max<2>>;
  using whole = conv2d<Shape, physics::digital, noise::gaussian_read, act::tanh, pool::max<2>>;
  static_assert(fast::reads_in_blocks && !whole::reads_in_blocks);
  constexpr bool narrow = Shape::fixed.stride == 1 && Shape::out_channels < simd::lanes<float>;
  CHECK((fast::reads_directly && (narrow || simd::wide_correlation<float>(Shape::out_channels))) == expect_direct);
  fast b;
  whole w;
  w.noise.sigma = 0;
  rng g0(3);
  b.initialize(Shape::in_size, fast::out_extent, g0);
  rng g1(3);
  w.initialize(Shape::in_size, whole::out_extent, g1);
  for (std::size_t c = 0; c < Shape::out_channels; ++c)
    b.tile.bias_data()[c] = w.tile.bias_data()[c] = 0.05f * float(c % 5) - 0.1f;
  const auto x = random_batch<float>(128, Shape::in_size, 4);
  std::vector<float> ab(128 * fast::pre_activation_extent), hb(128 * fast::out_extent), aw(ab.size()), hw(hb.size());
  rng g(1);
  w.forward(x.data(), 128, aw.data(), hw.data(), g);
  std::vector<float> a1, h1;
  for (unsigned threads : {1u, 2u, 3u}) {
    set_num_threads(threads);
    b.forward(x.data(), 128, ab.data(), hb.data(), g);
    if (threads == 1) {
      a1 = ab;
      h1 = hb;
    }
    CHECK(ab == a1);
    CHECK(hb == h1);
  }
  set_num_threads(0);
  if (bitwise) {
    CHECK(ab == aw);
    CHECK(hb == hw);
  } else {
    for (std::size_t i = 0; i < ab.size(); ++i) REQUIRE(ab[i] == Approx(aw[i]).margin(1e-5));
  }
  constexpr std::size_t odd = 127;
  ab.resize(odd * fast::pre_activation_extent);
  hb.resize(odd * fast::out_extent);
  for (unsigned threads : {1u, 2u, 3u}) {
    set_num_threads(threads);
    b.forward(x.data(), odd, ab.data(), hb.data(), g);
    if (threads == 1) h1 = hb;
    CHECK(hb == h1);
  }
  set_num_threads(0);
  for (std::size_t i = 0; i < hb.size(); ++i) REQUIRE(hb[i] == Approx(hw[i]).margin(1e-5));
}
}  // namespace

TEST_CASE("an exact, noiseless kernel reads its patches directly or in cache-sized blocks with the same result",
          "[conv][threads]") {
  constexpr std::size_t W = simd::lanes<float>;
  // 20 × 20 images, 5 × 5 kernels with padding 2: 400 positions, 10,000 patch values per
  // image, so 128 images are read in blocks of 13 (one thread) to 39 (three) images where they
  // are not read directly. 8 kernels are read directly with 16 float lanes (AVX-512), where a
  // whole read sums as the direct one does, and fill one or two registers of 8 or 4; 24 kernels (neither fewer
  // than the lanes nor one or two registers' worth) in blocks everywhere.
  check_fast_read<conv_shape<20, 20, 1, 8, 5, 1, 2>>(W >= 4, W > 8);
  check_fast_read<conv_shape<20, 20, 1, 24, 5, 1, 2>>(false, true);
  // Three input channels, a 3 × 3 kernel and an odd width: read directly wherever 4 kernels
  // are fewer than the lanes (or fill one register); the whole read's product may sum in
  // another order.
  check_fast_read<conv_shape<12, 19, 3, 4, 3, 1, 1>>(W >= 4, false);
  // LeNet-5's second convolution: 16 kernels fill one or two registers.
  check_fast_read<conv_shape<14, 14, 6, 16, 5, 1, 0>>(W == 16 || W == 8, false);
  // Stride 2 with padding: two registers' worth of kernels (AVX-512) are read directly.
  check_fast_read<conv_shape<13, 13, 3, 32, 3, 2, 1>>(W == 16, false);
}

namespace {
// kernel_gradient of a digital double layer against naive sums over the unfolded patches, on
// 1, 2 and 3 threads (bitwise the same); `direct` and `wide` say which path it must take (from
// padded planes, from the image with one or two registers of kernels, else through patches).
template <class Shape>
void check_kernel_gradient(bool direct, bool wide) {
  using layer = conv2d<Shape, dd, noise::none, act::tanh, pool::max<2>>;
  CHECK((Shape::fixed.stride == 1 && Shape::out_channels < simd::lanes<double> &&
         !simd::is_scalar_arch<simd::default_arch>) == direct);
  CHECK((!direct && simd::wide_correlation<double>(Shape::out_channels)) == wide);
  layer l;
  rng g0(5);
  l.initialize(Shape::in_size, layer::out_extent, g0);
  const std::size_t n = 64, P = l.positions(), K = l.kernel_inputs(), C = l.channels();
  const auto x = random_batch<double>(n, Shape::in_size, 6);
  const auto delta = random_batch<double>(n, layer::pre_activation_extent, 7);
  std::vector<double> patches(n * P * K), dw_ref(C * K, 0.0), db_ref(C, 0.0);
  l.patches(x.data(), n, patches.data());
  for (std::size_t r = 0; r < n * P; ++r)
    for (std::size_t c = 0; c < C; ++c) {
      const double d = delta.data()[r * C + c];
      db_ref[c] += 0.5 * d;
      for (std::size_t k = 0; k < K; ++k) dw_ref[c * K + k] += 0.5 * d * patches[r * K + k];
    }
  std::vector<double> dw(C * K), db(C), dw1, db1;
  for (unsigned threads : {1u, 2u, 3u}) {
    set_num_threads(threads);
    l.kernel_gradient(x.data(), delta.data(), n, 0.5, dw.data(), db.data());
    if (threads == 1) {
      dw1 = dw;
      db1 = db;
    }
    CHECK(dw == dw1);
    CHECK(db == db1);
  }
  set_num_threads(0);
  double worst = 0;
  for (std::size_t i = 0; i < dw.size(); ++i) worst = std::max(worst, std::abs(dw[i] - dw_ref[i]));
  for (std::size_t c = 0; c < C; ++c) worst = std::max(worst, std::abs(db[c] - db_ref[c]));
  CHECK(worst < 1e-9);
}
}  // namespace

namespace {
// backward_read_at of a digital double layer against the patches' transposed read summed back
// (`carry_through_patches` with the base read), on 1, 2 and 3 threads (bitwise the same);
// `direct` says whether the read goes without patches (`simd::correlate_adjoint`).
template <class Shape>
void check_adjoint_read(bool direct) {
  using layer = conv2d<Shape, dd>;
  CHECK((simd::correlate_adjoint_registers<double>(Shape::kernel, Shape::in_channels) > 0) == direct);
  layer l;
  rng g0(8);
  l.initialize(Shape::in_size, layer::out_extent, g0);
  const std::size_t n = 9;
  const auto delta = random_batch<double>(n, layer::pre_activation_extent, 9);
  std::vector<double> ref(n * Shape::in_size), dx(n * Shape::in_size), dx1;
  rng g(1);
  l.carry_through_patches(delta.data(), n, ref.data(), [&](const double* d, std::size_t rows, double* dp) {
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t k = 0; k < l.kernel_inputs(); ++k) {
        double v = 0;
        for (std::size_t c = 0; c < l.channels(); ++c)
          v += d[r * l.channels() + c] * l.tile.weight_data()[c * l.kernel_inputs() + k];
        dp[r * l.kernel_inputs() + k] = v;
      }
  });
  for (unsigned threads : {1u, 2u, 3u}) {
    set_num_threads(threads);
    std::fill(dx.begin(), dx.end(), std::numeric_limits<double>::quiet_NaN());  // every entry written
    l.backward_read_at(nullptr, delta.data(), n, dx.data(), g);
    if (threads == 1) dx1 = dx;
    CHECK(dx == dx1);
  }
  set_num_threads(0);
  double worst = 0;
  for (std::size_t i = 0; i < dx.size(); ++i) worst = std::max(worst, std::abs(dx[i] - ref[i]));
  CHECK(worst < 1e-12);
}
}  // namespace

TEST_CASE("an exact kernel's transposed read sums back without patches as through them", "[conv][threads]") {
  // Without patches where a kernel row's taps (kernel × input channels) fill at most five
  // registers of doubles.
  constexpr std::size_t W = simd::lanes<double>;
  constexpr bool simd = !simd::is_scalar_arch<simd::default_arch>;
  check_adjoint_read<conv_shape<14, 14, 6, 16, 5, 1, 0>>(simd && 30 <= 5 * W);  // LeNet-5's second convolution
  check_adjoint_read<conv_shape<12, 12, 16, 32, 5, 1, 0>>(simd && 80 <= 5 * W);  // convnet-ep's
  check_adjoint_read<conv_shape<12, 12, 4, 8, 5, 1, 0>>(simd && 20 <= 5 * W);
  check_adjoint_read<conv_shape<28, 28, 1, 6, 5, 1, 2>>(simd);  // padding 2: the edges dropped
  check_adjoint_read<conv_shape<13, 11, 3, 5, 3, 2, 1>>(simd);  // stride 2, odd sizes
  check_adjoint_read<conv_shape<9, 9, 40, 3, 3, 1, 1>>(false);  // a kernel row of 120 taps: patches
}

TEST_CASE("a digital kernel's update sums its patches shard by shard, the same on any thread count", "[conv][threads]") {
  // 64 images of 400 positions: shards of 6 images, 11 of them. Three kernels are correlated
  // directly wherever a register holds more than 3 doubles; 9 kernels, or 3 at stride 2, go
  // through the unfolded patches.
  constexpr std::size_t W = simd::lanes<double>;
  check_kernel_gradient<conv_shape<20, 20, 2, 3, 5, 1, 2>>(W > 3, false);
  check_kernel_gradient<conv_shape<20, 20, 2, 9, 5, 1, 2>>(false, false);
  check_kernel_gradient<conv_shape<21, 21, 1, 3, 3, 2, 1>>(false, false);
  // One or two registers' worth of kernels are summed from the image: 16 (LeNet-5's second
  // convolution, two registers of 8 doubles on AVX-512) and 8, whose kernel rows of 30 taps go
  // in blocks of 15 (one register) or 6 (two of 4); stride 2 with padding, whose 6-tap rows go
  // one tap at a time.
  check_kernel_gradient<conv_shape<14, 14, 6, 16, 5, 1, 0>>(false, W == 8);
  check_kernel_gradient<conv_shape<14, 14, 6, 8, 5, 1, 0>>(false, W == 8 || W == 4);
  check_kernel_gradient<conv_shape<21, 21, 2, 8, 3, 2, 1>>(false, W == 8 || W == 4);
}

TEST_CASE("a convolutional network rejects wrong input sizes and sizes that contradict its geometry", "[conv][errors]") {
  small_net net(seed{1});
  const auto bad = random_batch<double>(2, conv_hidden::in_extent + 1, 1);
  CHECK_THROWS_WITH(forward(net, bad), Catch::Contains("expected rows of 36 values"));
  CHECK_THROWS_WITH((small_net({37, 36, 20, 3}, seed{1})), Catch::Contains("convolution's geometry"));
}

namespace {
// small_net with every convolution's geometry left to run time.
using any_shape = conv_shape<dynamic, dynamic, dynamic, dynamic, dynamic, dynamic, dynamic>;
using dyn_conv_net = network<conv2d<any_shape, dd, noise::none, act::tanh, pool::max<2>>,
                             conv2d<any_shape, dd, noise::none, act::tanh>,
                             dense<dynamic, dynamic, dd, noise::none, act::identity>>;
constexpr conv_geometry geometry_hidden{6, 6, 1, 4, 3, 1, 1}, geometry_hidden2{3, 3, 4, 5, 2, 1, 0};

dyn_conv_net make_dyn_conv_net(std::uint64_t s) {
  return dyn_conv_net({36, 36, 20, 3}, seed{s}, at_layer<0>(geometry_hidden), at_layer<1>(geometry_hidden2));
}

template <class Net>
std::vector<double> all_weights(const Net& net) {
  std::vector<double> w;
  net.for_each_layer([&](const auto& l, std::size_t) {
    w.insert(w.end(), l.tile.weight_data(), l.tile.weight_data() + l.tile.in_size() * l.tile.out_size());
    w.insert(w.end(), l.tile.bias_data(), l.tile.bias_data() + l.tile.out_size());
  });
  return w;
}
}  // namespace

TEST_CASE("a convolution of run-time geometry (pnn::dynamic) computes and trains exactly as the fixed one",
          "[conv][dynamic]") {
  small_net fixed(seed{12});
  dyn_conv_net dyn = make_dyn_conv_net(12);
  CHECK(layer<0>(dyn).geometry() == conv_hidden::shape_type::fixed);
  CHECK(layer<0>(dyn).out_size() == conv_hidden::out_extent);
  CHECK(layer<1>(dyn).pre_activation_size() == conv_hidden2::pre_activation_extent);
  CHECK(dyn.sizes() == fixed.sizes());
  REQUIRE(all_weights(dyn) == all_weights(fixed));
  const auto x = random_batch<double>(5, 36, 13);
  const auto t = one_hot<double>(5, 3);
  const bool same_outputs = forward(dyn, x) == forward(fixed, x);
  CHECK(same_outputs);
  // Gradients by finite differences through the run-time unfolding and pooling.
  const auto r = check_gradients(dyn, x, t, loss::softmax_cross_entropy{}, {.epsilon = 1e-6});
  CHECK(r.max_error < 1e-6);
  // Training steps of backprop and of sign-symmetric FA (per-kernel feedback) give the same weights.
  learn::backprop<optim::momentum> bp_fixed{{.optimizer = {.learning_rate = 0.05f}}}, bp_dyn = bp_fixed;
  CHECK(loss_ratio(bp_fixed, fixed, x, t, 10) == loss_ratio(bp_dyn, dyn, x, t, 10));
  CHECK(all_weights(dyn) == all_weights(fixed));
  learn::feedback_alignment<> fa_fixed{{.feedback = learn::feedback_kind::sign_symmetry}}, fa_dyn = fa_fixed;
  CHECK(loss_ratio(fa_fixed, fixed, x, t, 10) == loss_ratio(fa_dyn, dyn, x, t, 10));
  CHECK(all_weights(dyn) == all_weights(fixed));
  // Physics-aware training shapes its digital twin from the physical layers' geometry.
  learn::physics_aware<> pat_fixed{{.optimizer = {.learning_rate = 0.05f}}}, pat_dyn = pat_fixed;
  CHECK(loss_ratio(pat_fixed, fixed, x, t, 6) == loss_ratio(pat_dyn, dyn, x, t, 6));
  CHECK(all_weights(dyn) == all_weights(fixed));

  SECTION("a checkpoint keeps the geometry and loads only into the same one") {
    const auto bytes = io::to_bytes(state_part{"network", dyn});
    dyn_conv_net same = make_dyn_conv_net(99);
    io::from_bytes(bytes, "memory", state_part{"network", same});
    CHECK(all_weights(same) == all_weights(dyn));
    // The same layer sizes, another kernel, stride and padding in the second convolution.
    dyn_conv_net other({36, 36, 20, 3}, seed{99}, at_layer<0>(geometry_hidden),
                       at_layer<1>(conv_geometry{3, 3, 4, 5, 3, 2, 1}));
    REQUIRE(other.sizes() == dyn.sizes());
    const auto before = all_weights(other);
    CHECK_THROWS_WITH(io::from_bytes(bytes, "memory", state_part{"network", other}),
                      Catch::Contains("geometry") && Catch::Contains("differs"));
    CHECK(all_weights(other) == before);
  }
}

TEST_CASE("a run-time geometry is checked: impossible values, fixed entries, pooling, sizes", "[conv][dynamic][errors]") {
  using partly = conv2d<conv_shape<dynamic, dynamic, 1, 4, 3, 1, 1>, dd, noise::none, act::tanh, pool::max<2>>;
  partly l;
  CHECK_THROWS_WITH(l.set_geometry(conv_geometry{6, 6, 2, 4, 3, 1, 1}), Catch::Contains("fixed entries"));
  CHECK_THROWS_WITH(l.set_geometry(conv_geometry{6, 6, 1, 4, 0, 1, 1}), Catch::Contains("kernel size must be positive"));
  CHECK_THROWS_WITH(l.set_geometry(conv_geometry{0, 6, 1, 4, 3, 1, 1}), Catch::Contains("positive height"));
  CHECK_THROWS_WITH(l.set_geometry(conv_geometry{6, 6, 1, 4, 3, 0, 1}), Catch::Contains("stride must be positive"));
  CHECK_THROWS_WITH(l.set_geometry(conv_geometry{1, 1, 1, 4, 3, 1, 0}), Catch::Contains("larger than the padded image"));
  CHECK_THROWS_WITH(l.set_geometry(conv_geometry{1, 1, 1, 4, 3, 1, 1}), Catch::Contains("pooling window"));
  using free_conv = conv2d<any_shape, dd>;
  free_conv f;
  CHECK_THROWS_WITH(f.set_geometry(conv_geometry{6, 6, 1, 4, 3, 1, 3}), Catch::Contains("padding"));
  rng g(1);
  CHECK_THROWS_WITH(f.initialize(36, 144, g), Catch::Contains("must be set"));
  l.set_geometry(conv_geometry{6, 6, 1, 4, 3, 1, 1});
  CHECK(l.out_size() == 36);
  CHECK_THROWS_WITH(l.initialize(36, 35, g), Catch::Contains("convolution's geometry"));
  // Networks: a geometry addressed to a layer that has none, and sizes that contradict it.
  CHECK_THROWS_WITH((dyn_conv_net({36, 36, 20, 3}, seed{1}, at_layer<0>(geometry_hidden))), Catch::Contains("must be set"));
  CHECK_THROWS_WITH((dyn_conv_net({36, 36, 21, 3}, seed{1}, at_layer<0>(geometry_hidden), at_layer<1>(geometry_hidden2))),
                    Catch::Contains("convolution's geometry"));
  const auto bad = random_batch<double>(2, 37, 1);
  dyn_conv_net net = make_dyn_conv_net(1);
  CHECK_THROWS_WITH(forward(net, bad), Catch::Contains("expected rows of 36 values"));
}

}  // namespace tests_conv
