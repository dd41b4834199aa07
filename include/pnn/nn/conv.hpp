// SPDX-License-Identifier: MIT
/// \file
/// \brief `pnn::conv2d<Shape, Substrate, Noise, Activation, Pool>`: a convolution whose kernel
/// matrix lives on one substrate tile, with optional pooling.
///
/// Analog hardware maps a convolution the way aihwkit's analog convolutions and crossbar
/// accelerators (ISAAC, Shafiee et al. 2016) do: the kernel matrix `K` (out_channels ×
/// kernel·kernel·in_channels) is programmed into one array and every input patch is one read of
/// it, `y_p = K x_p`. So every periphery and noise stage of the tile acts per patch read exactly
/// as it acts per sample of a `pnn::dense` layer, a crossbar's pulse-train update is driven by
/// the patches and their errors (one factored outer product per position), and energy and
/// converter counts follow the number of reads. Images are channels-last (height × width ×
/// channels, flattened per sample) because that is the layout the array's reads produce, so no
/// transposition sits between layers; a dense layer after the last convolution reads the
/// flattened image as is (no separate flatten layer is needed).
///
/// Pooling (`pool::max<S>`, `pool::avg<S>`: S × S windows, stride S, a trailing remainder dropped
/// as PyTorch does) is applied after the activation, `h = pool(f(a))`; the layer's trace keeps
/// the pre-activation `a` at every convolution position, so the backward pass routes each error
/// to the window element that produced the output (max) or spreads it (avg).
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <span>
#include <type_traits>
#include <vector>
#include <utility>

#include <pnn/core/error.hpp>
#include <pnn/core/extents.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/core/state_format.hpp>
#include <pnn/core/threads.hpp>
#include <pnn/nn/dense.hpp>
#include <pnn/nn/network.hpp>
#include <pnn/simd/blas.hpp>
#include <pnn/simd/gemm.hpp>

namespace pnn {

/// A convolution's geometry as run-time values: what `pnn::conv2d` reads when its
/// `conv_shape` leaves entries `pnn::dynamic`, and what a checkpoint records for them.
struct conv_geometry {
  std::size_t height = 0, width = 0, in_channels = 0, out_channels = 0, kernel = 0, stride = 1, padding = 0;

  [[nodiscard]] constexpr std::size_t out_height() const noexcept { return (height + 2 * padding - kernel) / stride + 1; }
  [[nodiscard]] constexpr std::size_t out_width() const noexcept { return (width + 2 * padding - kernel) / stride + 1; }
  /// Kernel positions per image: the reads of the array per sample.
  [[nodiscard]] constexpr std::size_t positions() const noexcept { return out_height() * out_width(); }
  /// Values per patch: the array's input lines.
  [[nodiscard]] constexpr std::size_t patch_size() const noexcept { return kernel * kernel * in_channels; }
  /// Values per input image.
  [[nodiscard]] constexpr std::size_t in_size() const noexcept { return height * width * in_channels; }
  /// Why the geometry cannot be convolved (the same conditions `conv_shape` checks at compile
  /// time), or nullptr when it can.
  [[nodiscard]] constexpr const char* defect() const noexcept {
    if (height == 0 || width == 0) return "pnn::conv_geometry: the image must have a positive height and width";
    if (in_channels == 0 || out_channels == 0) return "pnn::conv_geometry: channel counts must be positive";
    if (kernel == 0) return "pnn::conv_geometry: the kernel size must be positive";
    if (stride == 0) return "pnn::conv_geometry: the stride must be positive";
    if (padding >= kernel) return "pnn::conv_geometry: padding of a kernel's size or more reads only zeros at the border";
    if (height + 2 * padding < kernel || width + 2 * padding < kernel)
      return "pnn::conv_geometry: the kernel is larger than the padded image";
    // A sample's values are indexed by 32-bit argmax entries (pooled_read).
    if (height > (std::size_t(1) << 15) || width > (std::size_t(1) << 15) || in_channels > (std::size_t(1) << 16) ||
        out_channels > (std::size_t(1) << 16) || kernel > 64 || std::size_t(positions()) * out_channels > 0xFFFFFFFFu)
      return "pnn::conv_geometry: the image, channels or kernel are implausibly large";
    return nullptr;
  }
  friend constexpr bool operator==(const conv_geometry&, const conv_geometry&) = default;
};

/// Geometry of a 2-D convolution on channels-last images: an input of `Height × Width ×
/// InChannels`, `OutChannels` kernels of `Kernel × Kernel`, `Stride` and zero `Padding` on every
/// side. Fixed entries are checked at compile time; any entry may be `pnn::dynamic`, and the
/// layer then takes a `conv_geometry` at run time (`conv2d::set_geometry`, or
/// `pnn::at_layer<i>(pnn::conv_geometry{…})` when the network is built) that must agree with the
/// fixed ones.
template <std::size_t Height, std::size_t Width, std::size_t InChannels, std::size_t OutChannels,
          std::size_t Kernel, std::size_t Stride = 1, std::size_t Padding = 0>
struct conv_shape {
  /// True when no entry is `pnn::dynamic`: every size below is then a compile-time constant.
  static constexpr bool is_static = Height != dynamic && Width != dynamic && InChannels != dynamic &&
                                    OutChannels != dynamic && Kernel != dynamic && Stride != dynamic &&
                                    Padding != dynamic;
  static_assert(Height != 0 && Width != 0, "pnn::conv_shape: the image must have a positive height and width");
  static_assert(InChannels != 0 && OutChannels != 0, "pnn::conv_shape: channel counts must be positive");
  static_assert(Kernel != 0, "pnn::conv_shape: the kernel size must be positive");
  static_assert(Stride != 0, "pnn::conv_shape: the stride must be positive");
  static_assert(Padding == dynamic || Kernel == dynamic || Padding < Kernel,
                "pnn::conv_shape: padding of a kernel's size or more reads only zeros at the border");
  static_assert(!is_static || (Height + 2 * Padding >= Kernel && Width + 2 * Padding >= Kernel),
                "pnn::conv_shape: the kernel is larger than the padded image");

  static constexpr std::size_t height = Height, width = Width, in_channels = InChannels;
  static constexpr std::size_t out_channels = OutChannels, kernel = Kernel, stride = Stride, padding = Padding;
  /// The geometry of a fixed shape (every entry; meaningful only when `is_static`).
  static constexpr conv_geometry fixed{Height, Width, InChannels, OutChannels, Kernel, Stride, Padding};
  static constexpr std::size_t out_height = is_static ? fixed.out_height() : dynamic;
  static constexpr std::size_t out_width = is_static ? fixed.out_width() : dynamic;
  /// Kernel positions per image: the reads of the array per sample (`dynamic` unless fixed).
  static constexpr std::size_t positions = is_static ? fixed.positions() : dynamic;
  /// Values per patch: the array's input lines (`dynamic` unless fixed).
  static constexpr std::size_t patch_size = is_static ? fixed.patch_size() : dynamic;
  /// Values per input image (`dynamic` unless fixed).
  static constexpr std::size_t in_size = is_static ? fixed.in_size() : dynamic;

  /// True when `g` agrees with every fixed entry.
  [[nodiscard]] static constexpr bool admits(const conv_geometry& g) noexcept {
    auto ok = [](std::size_t fixed_entry, std::size_t v) { return fixed_entry == dynamic || fixed_entry == v; };
    return ok(Height, g.height) && ok(Width, g.width) && ok(InChannels, g.in_channels) &&
           ok(OutChannels, g.out_channels) && ok(Kernel, g.kernel) && ok(Stride, g.stride) && ok(Padding, g.padding);
  }
};

/// Pooling after a convolution's activation.
namespace pool {
/// No pooling.
struct none {
  static constexpr std::size_t window = 1;
  static constexpr const char* name = "none";
};
/// Maximum over non-overlapping `S × S` windows.
template <std::size_t S = 2>
struct max {
  static_assert(S > 0, "pnn::pool::max: the window must be positive");
  static constexpr std::size_t window = S;
  static constexpr const char* name = "max";
};
/// Mean over non-overlapping `S × S` windows.
template <std::size_t S = 2>
struct avg {
  static_assert(S > 0, "pnn::pool::avg: the window must be positive");
  static constexpr std::size_t window = S;
  static constexpr const char* name = "avg";
};
}  // namespace pool

namespace detail {
template <class P>
inline constexpr bool is_max_pool_v = false;
template <std::size_t S>
inline constexpr bool is_max_pool_v<pool::max<S>> = true;
template <class P>
inline constexpr bool is_avg_pool_v = false;
template <std::size_t S>
inline constexpr bool is_avg_pool_v<pool::avg<S>> = true;
template <class P>
concept pooling = std::is_same_v<P, pool::none> || is_max_pool_v<P> || is_avg_pool_v<P>;
}  // namespace detail

/// A convolutional physical layer: `a = noise_out(K noise_in(x_p)) + b` at every position `p`,
/// `h = pool(f(a))`. Inherits the tile, noise and effective-weight machinery of the
/// `pnn::dense` layer of the kernel matrix's shape (`patch_size` inputs, `out_channels`
/// outputs); `in_size()`/`out_size()` are the flattened image sizes the network chains.
/// \tparam Shape      a `pnn::conv_shape`; with `pnn::dynamic` entries the geometry is set at
///                    run time (`set_geometry`) and the kernel tile has run-time extents
/// \tparam Substrate  physics of the kernel array (`physics::digital`, `crossbar<D>`, …)
/// \tparam Noise      noise of every patch read
/// \tparam Activation nonlinearity before pooling
/// \tparam Pool       `pool::none`, `pool::max<S>` or `pool::avg<S>`
template <class Shape, class Substrate, noise_policy Noise = noise::none, class Activation = act::identity,
          class Pool = pool::none>
class conv2d : public dense<Shape::is_static ? Shape::patch_size : dynamic, Shape::is_static ? Shape::out_channels : dynamic,
                            Substrate, Noise, Activation> {
  static_assert(detail::pooling<Pool>, "pnn::conv2d: Pool must be pool::none, pool::max<S> or pool::avg<S>");
  static_assert(!Shape::is_static || (Pool::window <= Shape::out_height && Pool::window <= Shape::out_width),
                "pnn::conv2d: the pooling window is larger than the convolution's output");

 public:
  using base_type = dense<Shape::is_static ? Shape::patch_size : dynamic, Shape::is_static ? Shape::out_channels : dynamic,
                          Substrate, Noise, Activation>;
  using shape_type = Shape;
  using pool_type = Pool;
  using typename base_type::tile_type;
  using typename base_type::value_type;
  static_assert(!tile_hooks::has_read_vjp<tile_type>,
                "pnn::conv2d: substrates whose read is nonlinear in its input (read_vjp) cannot share one kernel "
                "array over patches; use a linear-read substrate");

  /// True when the geometry is fixed at compile time.
  static constexpr bool is_static = Shape::is_static;
  static constexpr std::size_t in_extent = Shape::in_size;
  static constexpr std::size_t out_extent =
      is_static ? (Shape::out_height / Pool::window) * (Shape::out_width / Pool::window) * Shape::out_channels : dynamic;
  /// Values of the pre-activation per sample: every position's outputs, before pooling.
  static constexpr std::size_t pre_activation_extent = is_static ? Shape::positions * Shape::out_channels : dynamic;
  /// True when a read of the kernel tile is exactly the product with its weights, without
  /// noise: `read_patches` may then unfold and read the patches block by block.
  static constexpr bool reads_in_blocks = tile_hooks::reads_exactly<tile_type> && !base_type::has_input_noise &&
                                          !base_type::has_output_noise && !base_type::has_weight_noise;
  /// True when an exact read may skip the patches: with stride 1 and fewer kernels than a
  /// register has lanes (`simd::correlate_narrow`), or with one or two registers' worth of
  /// kernels (`simd::correlate_wide`), `read_patches` correlates the kernels with the image
  /// directly, each sum over the taps in a patch row's order.
  static constexpr bool reads_directly = reads_in_blocks && !simd::is_scalar_arch<simd::default_arch> &&
                                        requires(const tile_type& t) { t.weight_data(); };
  /// True when the layer max-pools: `pooled_read` then records each window's maximum.
  static constexpr bool max_pooled = detail::is_max_pool_v<Pool>;

  /// A fixed geometry, or (dynamic shapes) one to be set before the network initializes the layer.
  constexpr conv2d() = default;
  /// A run-time geometry (`set_geometry`).
  explicit conv2d(const conv_geometry& g) { set_geometry(g); }

  /// The convolution's geometry: the fixed one, or the one set at run time.
  [[nodiscard]] constexpr conv_geometry geometry() const noexcept {
    if constexpr (is_static) return Shape::fixed;
    else return geometry_;
  }
  /// Sets a run-time geometry; call before `initialize` (the network's constructors apply
  /// `pnn::at_layer<i>(conv_geometry{…})` first). For a fixed shape only its own geometry is
  /// accepted.
  /// \pre `g` is a valid geometry (`g.defect() == nullptr`), agrees with the shape's fixed
  /// entries, and its output is at least one pooling window high and wide.
  void set_geometry(const conv_geometry& g) {
    const char* why = g.defect();
    PNN_EXPECTS(why == nullptr, why);
    PNN_EXPECTS(Shape::admits(g), "pnn::conv2d::set_geometry: the geometry differs from the shape's fixed entries");
    PNN_EXPECTS(Pool::window <= g.out_height() && Pool::window <= g.out_width(),
                "pnn::conv2d::set_geometry: the pooling window is larger than the convolution's output");
    if constexpr (!is_static) geometry_ = g;
  }

  /// Values per patch: the kernel array's input lines (`k²·C_in`).
  [[nodiscard]] constexpr std::size_t kernel_inputs() const noexcept {
    if constexpr (is_static) return Shape::patch_size;
    else return geometry_.patch_size();
  }
  /// Output channels: the kernel array's output lines.
  [[nodiscard]] constexpr std::size_t channels() const noexcept {
    if constexpr (is_static) return Shape::out_channels;
    else return geometry_.out_channels;
  }
  /// Kernel positions per image: the reads of the array per sample.
  [[nodiscard]] constexpr std::size_t positions() const noexcept {
    if constexpr (is_static) return Shape::positions;
    else return geometry_.positions();
  }
  /// Rows of kernel positions (before pooling).
  [[nodiscard]] constexpr std::size_t out_height() const noexcept {
    if constexpr (is_static) return Shape::out_height;
    else return geometry_.out_height();
  }
  /// Columns of kernel positions (before pooling).
  [[nodiscard]] constexpr std::size_t out_width() const noexcept {
    if constexpr (is_static) return Shape::out_width;
    else return geometry_.out_width();
  }
  /// Rows and columns of the pooled output (a trailing remainder dropped).
  [[nodiscard]] constexpr std::size_t pooled_height() const noexcept { return out_height() / Pool::window; }
  [[nodiscard]] constexpr std::size_t pooled_width() const noexcept { return out_width() / Pool::window; }
  /// Values per input image (height · width · in_channels).
  [[nodiscard]] constexpr std::size_t in_size() const noexcept {
    if constexpr (is_static) return in_extent;
    else return geometry_.in_size();
  }
  /// Values per output image (pooled height · pooled width · channels).
  [[nodiscard]] constexpr std::size_t out_size() const noexcept {
    if constexpr (is_static) return out_extent;
    else return pooled_height() * pooled_width() * channels();
  }
  /// Values of the pre-activation per sample (positions · channels).
  [[nodiscard]] constexpr std::size_t pre_activation_size() const noexcept {
    if constexpr (is_static) return pre_activation_extent;
    else return positions() * channels();
  }

  /// Shapes the kernel array and draws its weights: Glorot-uniform with the convolution's fans
  /// (fan-in `k²·C_in`, fan-out `k²·C_out`), He-uniform for ReLU, zero bias.
  /// \pre the geometry is set (dynamic shapes), `in == in_size()` and `out == out_size()` (the
  /// network passes its sizes).
  void initialize(std::size_t in, std::size_t out, rng& g) {
    if constexpr (!is_static)
      PNN_EXPECTS(geometry_.kernel != 0,
                  "pnn::conv2d: a run-time geometry must be set before the layer is initialized "
                  "(set_geometry, or pnn::at_layer<i>(pnn::conv_geometry{...}) when building the network)");
    PNN_EXPECTS(in == in_size() && out == out_size(),
                "pnn::conv2d: the network's sizes differ from the convolution's geometry");
    const double fan_in = double(kernel_inputs());
    const double fan_out = double(geometry().kernel * geometry().kernel * channels());
    const double fan = std::is_same_v<Activation, act::relu> ? 0.5 * fan_in : 0.5 * (fan_in + fan_out);
    this->initialize_with_fan(kernel_inputs(), channels(), fan, g);
  }

  /// Checkpoints record a run-time geometry before the tile's state (pnn/nn/state.hpp). As for
  /// every extent, a checkpoint loads only into a layer of the same geometry.
  template <class V>
  void visit_geometry(V& v) {
    if constexpr (!is_static) {
      std::uint64_t e[7] = {geometry_.height, geometry_.width,  geometry_.in_channels, geometry_.out_channels,
                            geometry_.kernel, geometry_.stride, geometry_.padding};
      if constexpr (V::loading) {
        const conv_geometry mine = geometry_;
        v("geometry", std::span<std::uint64_t, 7>(e), state_scratch);
        const conv_geometry g{std::size_t(e[0]), std::size_t(e[1]), std::size_t(e[2]), std::size_t(e[3]),
                              std::size_t(e[4]), std::size_t(e[5]), std::size_t(e[6])};
        if (!(g == mine)) v.reject("geometry", "differs from this convolution's geometry");
      } else {
        v("geometry", std::span<std::uint64_t, 7>(e));
      }
    }
  }

  /// Reads every patch of `x` (n × in_size) through the kernel tile, unbiased, into `pre`
  /// (n·positions() × channels()): the one read `forward` and `pooled_read` share. With
  /// `reads_in_blocks` (and at least 64 positions) the patches are unfolded and read in
  /// cache-sized blocks of samples, with the same result; with `reads_directly` and a kernel
  /// count it suits, the kernels are correlated with the image instead.
  void read_patches(const value_type* x, std::size_t n, value_type* pre, rng& g) const {
    static thread_local std::vector<value_type> patch_buffer, noise_scratch;
    const std::size_t rows = n * positions();
    if (correlate_directly(x, n, pre, [](std::size_t) noexcept {})) return;
    if constexpr (reads_in_blocks) {
      // The patches hold k²·C_in values per position: unfolded whole and then read, they
      // stream through memory twice. An exact, noiseless read gives every row the same result
      // in any block of at least a vector's worth of rows, so blocks of samples whose patches
      // fit a core's cache (~512 KiB per thread) are unfolded and read one after the other.
      if (positions() >= 64) {
        const std::size_t per_sample = positions() * kernel_inputs();
        // Blocks start at multiples of 16 rows, where the products' register tiles start too.
        const std::size_t align = 16 / std::gcd(positions(), std::size_t(16));
        const std::size_t cached = (std::size_t(1) << 17) * num_threads() / per_sample / align * align;
        const std::size_t block = cached > 0 ? cached : align;
        patch_buffer.resize((n < block ? n : block) * per_sample);
        for (std::size_t s0 = 0; s0 < n; s0 += block) {
          const std::size_t ns = n - s0 < block ? n - s0 : block;
          patches(x + s0 * in_size(), ns, patch_buffer.data());
          base_type::read(patch_buffer.data(), ns * positions(), pre + s0 * positions() * channels(), g, nullptr);
        }
        return;
      }
    }
    patch_buffer.resize(rows * kernel_inputs());
    patches(x, n, patch_buffer.data());
    value_type* scratch = nullptr;
    if constexpr (base_type::has_input_noise) {
      noise_scratch.resize(rows * kernel_inputs());
      scratch = noise_scratch.data();
    }
    base_type::read(patch_buffer.data(), rows, pre, g, scratch);
  }

  /// Forward read of a batch `x` (n × in_size) → pre-activation `a` (n × pre_activation_size)
  /// and output `h` (n × out_size). `a` may alias `h` (inference: `a` is then not kept). The
  /// patches' reads draw their noise as a dense layer's read of `n · positions()` rows does.
  void forward(const value_type* x, std::size_t n, value_type* a, value_type* h, rng& g,
               value_type* /*input_scratch*/ = nullptr) const {
    using T = value_type;
    static thread_local std::vector<T> pre_buffer;
    const std::size_t rows = n * positions();
    constexpr bool pooled = !std::is_same_v<Pool, pool::none>;
    T* pre = a;
    if (pooled && a == h) {
      pre_buffer.resize(rows * channels());
      pre = pre_buffer.data();
    }
    if constexpr (pooled && reads_directly) {
      // One pass per sample while its outputs are in the core's first-level cache: the
      // correlation, its bias, the pooling and the activation (as three batch-wide passes,
      // the biased outputs of LeNet-5's first layer — 1.2 MB for 64 samples — streamed
      // through memory twice more, and two more teams were forked).
      if (reads_without_patches()) {
        const bias_pattern bias(*this);
        (void)correlate_directly(x, n, pre, [&](std::size_t s) { finish_sample(pre, h, s, bias); });
        return;
      }
    }
    read_patches(x, n, pre, g);
    if constexpr (!pooled) {
      if (pre == h) {
        add_bias(pre, n, this->activation);
      } else {
        add_bias(pre, n, act::identity{});
        for_samples(n, positions() * channels(), [&](std::size_t s0, std::size_t s1) {
          const std::size_t per = positions() * channels();
          simd::map<T>((s1 - s0) * per, pre + s0 * per, h + s0 * per, this->activation);
        });
      }
    } else {
      add_bias(pre, n, act::identity{});
      pool_forward(pre, n, h);
    }
  }

  /// `f(pre + b)` in place over the n samples' positions (n·positions() × channels()), split
  /// between the kernels' threads by samples (each value is computed alone).
  template <class F>
  void add_bias(value_type* pre, std::size_t n, const F& f) const {
    for_samples(n, positions() * channels(), [&](std::size_t s0, std::size_t s1) {
      simd::bias_map<value_type>((s1 - s0) * positions(), channels(), pre + s0 * positions() * channels(), channels(),
                                 this->tile.bias_data(), f);
    });
  }

  /// The layer's output `h` (n × out_size) from a pre-activation `a` (n × pre_activation_size,
  /// the bias included, as `forward` records it): `h = pool(f(a))`. What a rule that perturbs
  /// the pre-activation at its nodes (node perturbation) passes on to the layers above.
  void activate(const value_type* a, std::size_t n, value_type* h) const {
    [[maybe_unused]] const auto dm = dims();
    if constexpr (std::is_same_v<Pool, pool::none>)
      simd::map<value_type>(n * dm.pre_size, a, h, this->activation);
    else
      pool_forward(a, n, h);
  }

  /// The forward-mode derivative of `h = pool(f(a))` along a pre-activation tangent `adot`
  /// (n × pre_activation_size) at the recorded `a` and `h`, into `hdot` (n × out_size):
  /// `ḣ = pool′(f′(a) ⊙ ȧ)`. Max pooling passes on each window's first maximum (the entry
  /// `output_delta` sends the error to, so the two are adjoint); average pooling averages. What
  /// forward gradient carries up through a convolution.
  void activation_tangent(const value_type* adot, const value_type* a, const value_type* h, std::size_t n,
                          value_type* hdot) const {
    [[maybe_unused]] const auto dm = dims();
    using T = value_type;
    if constexpr (std::is_same_v<Pool, pool::none>) {
      for (std::size_t k = 0; k < n * dm.pre_size; ++k)
        hdot[k] = adot[k] * this->activation.derivative(a[k], h[k]);
    } else {
      const T* fa = values_pooled(a, n);
      for_samples(n, dm.pre_size, [&](std::size_t s0, std::size_t s1) {
        for (std::size_t s = s0; s < s1; ++s) {
          const T* as = a + s * dm.pre_size;
          const T* fs = fa + s * dm.pre_size;
          const T* ds = adot + s * dm.pre_size;
          const T* hs = h + s * dm.out_size;  // read when max pooling comes before f
          (void)hs;
          T* os = hdot + s * dm.out_size;
          for_each_window([&](std::size_t o, std::size_t first) {
            if constexpr (detail::is_max_pool_v<Pool>) {
              const std::size_t best = first_max(fs, first);
              os[o] = ds[best] * this->activation.derivative(as[best], pools_before_activation ? hs[o] : fs[best]);
            } else {
              T acc = T(0);
              for_window(first, [&](std::size_t k) { acc += ds[k] * this->activation.derivative(as[k], fs[k]); });
              os[o] = acc / T(Pool::window * Pool::window);
            }
          });
        }
      });
    }
  }

  /// True when the layer max-pools after a nondecreasing activation: then `max f(a) = f(max a)`,
  /// so the forward pass pools first and applies `f` to the pooled values only, and the
  /// backward pass finds each window's maximum in `a` itself.
  static constexpr bool pools_before_activation = [] {
    if constexpr (requires { Activation::nondecreasing; }) return detail::is_max_pool_v<Pool> && Activation::nondecreasing;
    else return false;
  }();

  /// `δ` at the convolution's outputs (n × pre_activation_size) from the error `up` reaching the
  /// layer's output (n × out_size), through pooling and the activation at the recorded `a`
  /// (the trace's pre-activation) and `h` (its output): `δ = unpool(up) ⊙ f′(a)`. Max pooling
  /// sends each error to the first maximum of its window; average pooling spreads it.
  void output_delta(const value_type* up, const value_type* a, const value_type* h, std::size_t n,
                    value_type* delta) const {
    [[maybe_unused]] const auto dm = dims();
    using T = value_type;
    if constexpr (std::is_same_v<Pool, pool::none>) {
      simd::times_derivative<T>(n * dm.pre_size, up, a, h, this->activation, delta);
    } else {
      if constexpr (pools_before_activation) {
        max_pool_delta(up, a, h, n, delta);
      } else {
        const T* fa = values_pooled(a, n);
        for_samples(n, dm.pre_size, [&](std::size_t s0, std::size_t s1) {
          std::fill(delta + s0 * dm.pre_size, delta + s1 * dm.pre_size, T(0));
          for (std::size_t s = s0; s < s1; ++s) {
            const T* as = a + s * dm.pre_size;
            const T* fs = fa + s * dm.pre_size;
            T* ds = delta + s * dm.pre_size;
            const T* us = up + s * dm.out_size;
            for_each_window([&](std::size_t o, std::size_t first) {
              if constexpr (detail::is_max_pool_v<Pool>) {
                const std::size_t best = first_max(fs, first);
                ds[best] = us[o] * this->activation.derivative(as[best], fs[best]);
              } else {
                const T share = us[o] / T(Pool::window * Pool::window);
                for_window(first, [&](std::size_t k) { ds[k] = share * this->activation.derivative(as[k], fs[k]); });
              }
            });
          }
        });
      }
    }
  }

  /// The drive an energy model's state receives from this layer (Laborieux et al. 2021's
  /// convolutional EP): the biased reads pooled *before* the nonlinearity, `d = pool(K x_p + b)`
  /// for `x` (n × in_size) into `d` (n × out_size), the patches read as `forward` reads them.
  /// For max pooling `argmax` (n × out_size) receives each window's first maximum, as an index
  /// into the sample's pre-activation (`pre_activation_size` values); it is ignored otherwise.
  /// With a nondecreasing `f` and max pooling `f(d)` is exactly the feed-forward output.
  void pooled_read(const value_type* x, std::size_t n, value_type* d, rng& g, std::uint32_t* argmax) const {
    [[maybe_unused]] const auto dm = dims();
    using T = value_type;
    static thread_local std::vector<T> pre_buffer;
    const std::size_t rows = n * positions();
    constexpr bool pooled = !std::is_same_v<Pool, pool::none>;
    T* pre = d;
    if constexpr (pooled) {
      pre_buffer.resize(rows * channels());
      pre = pre_buffer.data();
    }
    read_patches(x, n, pre, g);
    add_bias(pre, n, act::identity{});
    if constexpr (pooled) {
      constexpr std::size_t S = Pool::window;
      for_samples(n, dm.pre_size, [&](std::size_t s0, std::size_t s1) {
        for (std::size_t s = s0; s < s1; ++s) {
          const T* ps = pre + s * dm.pre_size;
          T* ds = d + s * dm.out_size;
          for_each_window([&](std::size_t o, std::size_t first) {
            if constexpr (detail::is_max_pool_v<Pool>) {
              const std::size_t best = first_max(ps, first);
              ds[o] = ps[best];
              if (argmax != nullptr) argmax[s * dm.out_size + o] = static_cast<std::uint32_t>(best);
            } else {
              T sum = T(0);
              for_window(first, [&](std::size_t k) { sum += ps[k]; });
              ds[o] = sum / T(S * S);
            }
          });
        }
      });
    }
  }

  /// The adjoint of `pooled_read`'s pooling: `v` (n × out_size, values at the pooled outputs)
  /// carried to every position (n × pre_activation_size): to the window's recorded maximum
  /// (`argmax` from `pooled_read` of the same rows), spread as `v/S²` over the window (average),
  /// or copied (no pooling). So `Kᵀ` of the result, summed over patches, is `∂(v · d)/∂x`.
  void unpool(const value_type* v, std::size_t n, const std::uint32_t* argmax, value_type* out) const {
    [[maybe_unused]] const auto dm = dims();
    using T = value_type;
    if constexpr (std::is_same_v<Pool, pool::none>) {
      std::copy(v, v + n * dm.out_size, out);
    } else {
      constexpr std::size_t S = Pool::window;
      if constexpr (detail::is_max_pool_v<Pool>)
        PNN_EXPECTS(argmax != nullptr, "pnn::conv2d::unpool: max pooling needs the argmax of pooled_read");
      for_samples(n, dm.pre_size, [&](std::size_t s0, std::size_t s1) {
        std::fill(out + s0 * dm.pre_size, out + s1 * dm.pre_size, T(0));
        for (std::size_t s = s0; s < s1; ++s) {
          const T* vs = v + s * dm.out_size;
          T* os = out + s * dm.pre_size;
          if constexpr (detail::is_max_pool_v<Pool>) {
            const std::uint32_t* as = argmax + s * dm.out_size;
            for (std::size_t o = 0; o < dm.out_size; ++o) os[as[o]] = vs[o];
          } else {
            for (std::size_t py = 0; py < dm.pooled_height; ++py)
              for (std::size_t px = 0; px < dm.pooled_width; ++px)
                for (std::size_t c = 0; c < dm.channels; ++c) {
                  const T share = vs[(py * dm.pooled_width + px) * dm.channels + c] / T(S * S);
                  for (std::size_t wy = 0; wy < S; ++wy)
                    for (std::size_t wx = 0; wx < S; ++wx) os[((py * S + wy) * dm.out_width + (px * S + wx)) * dm.channels + c] = share;
                }
          }
        }
      });
    }
  }

  /// The vector–Jacobian product of the layer's read: the errors at the convolution's outputs
  /// `delta` (n × pre_activation_size) carried to its input (n × in_size) by the array's
  /// transposed read of every position's errors, `dx_p = Kᵀ δ_p` (through the noise stages as
  /// `dense::backward_read_at`), summed back over overlapping patches. `x` is not needed (the
  /// read is linear in it).
  void backward_read_at(const value_type* /*x*/, const value_type* delta, std::size_t n, value_type* dx,
                        rng& g) const
    requires transposable_tile<tile_type>
  {
    if constexpr (reads_directly) {
      // An exact transposed read needs no patches either: each image's errors are carried
      // back through the kernels row by row (`simd::correlate_adjoint`).
      if (simd::correlate_adjoint_registers<value_type>(geometry().kernel, geometry().in_channels) > 0) {
        correlate_adjoint(delta, n, dx);
        return;
      }
    }
    carry_through_patches(delta, n, dx, [&](const value_type* d, std::size_t rows, value_type* dp) {
      base_type::backward_read_at(nullptr, d, rows, dp, g);
    });
  }

  /// Carries `delta` (n × pre_activation_size) to the input (n × in_size) with any projection of
  /// one position's errors to one patch, `project(const T* d, rows, T* dp)` mapping `rows ×
  /// out_channels` to `rows × kernel_inputs()`: the transposed read (backprop), a fixed feedback
  /// kernel `B` (feedback alignment's per-kernel feedback, as BioTorch), a twin's read.
  template <class Project>
  void carry_through_patches(const value_type* delta, std::size_t n, value_type* dx, Project&& project) const {
    static thread_local std::vector<value_type> patch_errors;
    patch_errors.resize(n * positions() * kernel_inputs());
    project(delta, n * positions(), patch_errors.data());
    accumulate_patches(patch_errors.data(), n, dx);
  }

  /// The kernel's update from a batch `x` (n × in_size) and the errors at its pre-activation
  /// `delta` (n × pre_activation_size): `dw = scale · Σ_{s,p} δ_{s,p} x_{s,p}ᵀ` (channels ×
  /// kernel_inputs) and `db = scale · Σ_{s,p} δ_{s,p}` (channels), what a digital kernel is
  /// updated with. The samples go in fixed shards that fit a core's cache, in parallel, and the
  /// shards' sums are added in shard order: the batch's patches never stream through memory
  /// whole, and any thread count gives the same result. Where the geometry allows, no patch is
  /// unfolded at all: a few kernels at stride 1 are correlated from padded planes
  /// (`simd::correlate_narrow_gradient`), one or two registers' worth from the image itself
  /// (`simd::correlate_wide_gradient`); otherwise each shard's patches are unfolded and
  /// multiplied with its errors.
  void kernel_gradient(const value_type* x, const value_type* delta, std::size_t n, value_type scale, value_type* dw,
                       value_type* db) const {
    using T = value_type;
    const std::size_t P = positions(), K = kernel_inputs(), C = channels();
    const std::size_t per_sample = P * K;
    // About 256 KiB of patches per shard, the same for every thread count.
    const std::size_t shard = per_sample < (std::size_t(1) << 16) ? (std::size_t(1) << 16) / per_sample : 1;
    const std::size_t shards = (n + shard - 1) / shard, part = C * K + C;
    static thread_local std::vector<T> partials;
    partials.assign(shards * part, T(0));
    T* parts = partials.data();
    const auto bias_sum = [&](const T* d, std::size_t rows, T* pb) { add_channel_sums(d, rows * C, C, pb); };
    // Stride 1 and fewer kernels than lanes: each image's gradient is correlated from its
    // padded planes and its errors, without patches.
    const bool direct = !simd::is_scalar_arch<simd::default_arch> && geometry().stride == 1 && C < simd::lanes<T>;
    const bool wide = !direct && simd::wide_correlation<T>(C);
    if (direct) {
      const auto dm = dims();
      const std::size_t rows = dm.height + 2 * dm.padding, pitch = simd::correlate_pitch<T>(dm.out_width, dm.kernel);
      const std::size_t scratch = C * dm.out_height * simd::correlate_error_pitch<T>(dm.out_width);
      ::pnn::detail::chunk_claims claims(shards);
      ::pnn::detail::parallel_team(shards, [&](std::size_t t, std::size_t team) noexcept {
        const simd::kernel_work_pause uncounted;  // counted once below, on the calling thread
        static thread_local std::vector<T> planes;
        static thread_local std::vector<T> errors;
        planes.assign(dm.in_channels * rows * pitch, T(0));
        errors.resize(scratch);
        claims.run(t, team, [&](std::size_t k) {
          for (std::size_t s = k * shard; s < n && s < (k + 1) * shard; ++s) {
            lay_out_planes(x + s * dm.in_size, planes.data(), rows, pitch);
            const T* d = delta + s * P * C;
            simd::correlate_narrow_gradient<T>(C, dm.in_channels, dm.kernel, d, C, planes.data(), rows, pitch,
                                               dm.out_height, dm.out_width, parts + k * part, K, errors.data());
            bias_sum(d, P, parts + k * part + C * K);
          }
        });
      });
    } else if (wide) {
      // Sums of the transposed kernels' gradient (K × C), transposed once they are added up.
      const auto dm = dims();
      ::pnn::detail::chunk_claims claims(shards);
      ::pnn::detail::parallel_team(shards, [&](std::size_t t, std::size_t team) noexcept {
        const simd::kernel_work_pause uncounted;  // counted once below, on the calling thread
        static thread_local std::vector<T> padded;
        clear_padded(padded);
        claims.run(t, team, [&](std::size_t k) {
          for (std::size_t s = k * shard; s < n && s < (k + 1) * shard; ++s) {
            const T* d = delta + s * P * C;
            simd::correlate_wide_gradient<T>(C, dm.in_channels, dm.kernel, dm.stride, d,
                                             padded_image(x + s * dm.in_size, padded), padded_pitch(),
                                             dm.out_height, dm.out_width, parts + k * part);
            bias_sum(d, P, parts + k * part + C * K);
          }
        });
      });
    } else {
    ::pnn::detail::chunk_claims claims(shards);
    ::pnn::detail::parallel_team(shards, [&](std::size_t t, std::size_t team) noexcept {
      const simd::kernel_work_pause uncounted;  // counted once below, on the calling thread
      static thread_local std::vector<T> unfolded;
      unfolded.resize(shard * per_sample);
      claims.run(t, team, [&](std::size_t k) {
        const std::size_t s0 = k * shard, ns = n - s0 < shard ? n - s0 : shard, rows = ns * P;
        patches(x + s0 * in_size(), ns, unfolded.data());
        const T* d = delta + s0 * P * C;
        T* pk = parts + k * part;
        simd::gemm_tn<T>(C, K, rows, T(1), d, C, unfolded.data(), K, T(0), pk, K);
        bias_sum(d, rows, pk + C * K);
      });
    });
    }
    static thread_local std::vector<T> transposed_sum;
    T* sum = dw;
    if (wide) {
      transposed_sum.resize(C * K);
      sum = transposed_sum.data();
    }
    std::fill(sum, sum + C * K, T(0));
    std::fill(db, db + C, T(0));
    for (std::size_t k = 0; k < shards; ++k) {
      simd::axpy<T>(C * K, T(1), parts + k * part, sum);
      simd::axpy<T>(C, T(1), parts + k * part + C * K, db);
    }
    if (wide)
      for (std::size_t o = 0; o < C; ++o)
        for (std::size_t k = 0; k < K; ++k) dw[o * K + k] = sum[k * C + o];
    simd::scale<T>(C * K, scale, dw);
    simd::scale<T>(C, scale, db);
    // What one product of all the patches with the errors counts.
    const std::uint64_t rows = std::uint64_t(n) * P;
    simd::detail::count_kernel_work(2 * rows * C * K, rows * K + rows * C + C * K, sizeof(T));
  }

  /// Unfolds `x` (n × in_size) into its patches (n·positions() × kernel_inputs(), row `s·P + p`
  /// for sample `s` at position `p`, entries in (ky, kx, channel) order; zeros outside the
  /// image): the rows the array reads (im2col).
  void patches(const value_type* x, std::size_t n, value_type* out) const {
    const auto dm = dims();
    for_samples(n, positions() * kernel_inputs(), [&](std::size_t s0, std::size_t s1) {
    for (std::size_t s = s0; s < s1; ++s) {
      const value_type* xs = x + s * dm.in_size;
      for (std::size_t oy = 0; oy < dm.out_height; ++oy)
        for (std::size_t ox = 0; ox < dm.out_width; ++ox) {
          value_type* row = out + ((s * positions()) + oy * dm.out_width + ox) * kernel_inputs();
          for (std::size_t ky = 0; ky < dm.kernel; ++ky) {
            value_type* seg = row + ky * dm.kernel * dm.in_channels;
            const std::size_t iy = oy * dm.stride + ky;  // shifted by the padding
            if (iy < dm.padding || iy >= dm.height + dm.padding) {
              std::fill(seg, seg + dm.kernel * dm.in_channels, value_type(0));
              continue;
            }
            const std::size_t ox0 = ox * dm.stride;
            if (ox0 >= dm.padding && ox0 + dm.kernel <= dm.width + dm.padding) {  // the whole kernel row lies inside the image
              const value_type* src = xs + ((iy - dm.padding) * dm.width + (ox0 - dm.padding)) * dm.in_channels;
              // A fixed geometry makes this a few vector moves, not a call.
              std::memcpy(seg, src, dm.kernel * dm.in_channels * sizeof(value_type));
            } else {
              for (std::size_t kx = 0; kx < dm.kernel; ++kx) {
                const std::size_t ix = ox0 + kx;
                if (ix < dm.padding || ix >= dm.width + dm.padding)
                  std::fill(seg + kx * dm.in_channels, seg + (kx + 1) * dm.in_channels, value_type(0));
                else
                  std::memcpy(seg + kx * dm.in_channels, xs + ((iy - dm.padding) * dm.width + (ix - dm.padding)) * dm.in_channels, dm.in_channels * sizeof(value_type));
              }
            }
          }
        }
    }
    });
  }

  /// The adjoint of `patches`: sums patch values (n·positions() × kernel_inputs()) back into the
  /// image positions() they were read from, `dx` (n × in_size, overwritten).
  void accumulate_patches(const value_type* dp, std::size_t n, value_type* dx) const {
    const auto dm = dims();
    for_samples(n, positions() * kernel_inputs(), [&](std::size_t s0, std::size_t s1) {
    std::fill(dx + s0 * dm.in_size, dx + s1 * dm.in_size, value_type(0));
    for (std::size_t s = s0; s < s1; ++s) {
      value_type* xs = dx + s * dm.in_size;
      for (std::size_t oy = 0; oy < dm.out_height; ++oy)
        for (std::size_t ox = 0; ox < dm.out_width; ++ox) {
          const value_type* row = dp + ((s * positions()) + oy * dm.out_width + ox) * kernel_inputs();
          for (std::size_t ky = 0; ky < dm.kernel; ++ky) {
            const std::size_t iy = oy * dm.stride + ky;
            if (iy < dm.padding || iy >= dm.height + dm.padding) continue;
            for (std::size_t kx = 0; kx < dm.kernel; ++kx) {
              const std::size_t ix = ox * dm.stride + kx;
              if (ix < dm.padding || ix >= dm.width + dm.padding) continue;
              value_type* dst = xs + ((iy - dm.padding) * dm.width + (ix - dm.padding)) * dm.in_channels;
              const value_type* src = row + (ky * dm.kernel + kx) * dm.in_channels;
              for (std::size_t c = 0; c < dm.in_channels; ++c) dst[c] += src[c];
            }
          }
        }
    }
    });
  }

 private:
  // One image (in_size values, (y, x, c)) into the interior of zero-padded planes, one per
  // input channel, of `rows` rows of `pitch` values: what `simd::correlate_narrow` reads.
  void lay_out_planes(const value_type* xs, value_type* planes, std::size_t rows, std::size_t pitch) const {
    const auto dm = dims();
    for (std::size_t iy = 0; iy < dm.height; ++iy)
      for (std::size_t ix = 0; ix < dm.width; ++ix)
        for (std::size_t c = 0; c < dm.in_channels; ++c)
          planes[(c * rows + iy + dm.padding) * pitch + ix + dm.padding] = xs[(iy * dm.width + ix) * dm.in_channels + c];
  }

  // True when `read_patches` correlates the image directly (`correlate_directly` does).
  bool reads_without_patches() const noexcept {
    if constexpr (reads_directly) return narrow_correlation() || simd::wide_correlation<value_type>(channels());
    else return false;
  }
  // Stride 1 and fewer kernels than a register's lanes: `correlate`'s geometry.
  bool narrow_correlation() const noexcept { return geometry().stride == 1 && channels() < simd::lanes<value_type>; }

  // Reads the patches of `x` into `pre` by correlating the image with the kernels, `finish(s)`
  // running on each sample as it is done, where the geometry allows (`reads_without_patches`):
  // `correlate` for a few kernels at stride 1, else `correlate_wide`. False (nothing read)
  // otherwise.
  template <class Finish>
  bool correlate_directly(const value_type* x, std::size_t n, value_type* pre, const Finish& finish) const {
    if constexpr (reads_directly) {
      if (narrow_correlation()) {
        correlate(x, n, pre, finish);
        return true;
      }
      if (simd::wide_correlation<value_type>(channels())) {
        correlate_wide(x, n, pre, finish);
        return true;
      }
    }
    (void)x, (void)n, (void)pre, (void)finish;
    return false;
  }

  // `read_patches` without the patches (stride 1, fewer channels than lanes): each sample's
  // image is laid out as zero-padded planes, one per input channel, and correlated with the
  // kernels register by register along its rows; then `finish(s)` runs on the sample.
  template <class Finish>
  void correlate(const value_type* x, std::size_t n, value_type* pre, const Finish& finish) const {
    using T = value_type;
    const auto dm = dims();
    const std::size_t rows = dm.height + 2 * dm.padding;
    const std::size_t pitch = simd::correlate_pitch<T>(dm.out_width, dm.kernel);
    const T* w = this->tile.weight_data();
    for_samples(n, positions() * kernel_inputs(), [&](std::size_t s0, std::size_t s1) {
      // The work is counted once below, on the calling thread, as a kernel's work is.
      const simd::kernel_work_pause uncounted;
      static thread_local std::vector<T> planes;
      // The padding stays zero: every sample writes the same interior.
      planes.assign(dm.in_channels * rows * pitch, T(0));
      for (std::size_t s = s0; s < s1; ++s) {
        lay_out_planes(x + s * dm.in_size, planes.data(), rows, pitch);
        simd::correlate_narrow<T>(dm.channels, dm.in_channels, dm.kernel, w, dm.in_channels * dm.kernel * dm.kernel,
                                  planes.data(), rows, pitch, dm.out_height, dm.out_width,
                                  pre + s * dm.out_height * dm.out_width * dm.channels, dm.channels);
        finish(s);
      }
    });
    const std::uint64_t outputs = std::uint64_t(n) * positions() * channels();
    simd::detail::count_kernel_work(2 * outputs * kernel_inputs(),
                                    std::uint64_t(n) * dm.in_channels * rows * pitch + channels() * kernel_inputs() + outputs,
                                    sizeof(T));
  }

  // Values in a row of the zero-padded image that `correlate_wide` reads.
  std::size_t padded_pitch() const noexcept {
    const auto dm = dims();
    return (dm.width + 2 * dm.padding) * dm.in_channels;
  }

  // Zeroes `padded` at the size of the padded image, where there is padding. Once per thread
  // and call: every image then writes the same interior, and the border stays zero (a layer of
  // another run-time geometry may have left values there).
  void clear_padded(std::vector<value_type>& padded) const {
    const auto dm = dims();
    if (dm.padding > 0) padded.assign((dm.height + 2 * dm.padding) * padded_pitch(), value_type(0));
  }

  // One image (in_size values, (y, x, c)) as `correlate_wide` reads it: itself without padding,
  // else copied into the interior of `padded` (`clear_padded` first).
  const value_type* padded_image(const value_type* image, std::vector<value_type>& padded) const {
    const auto dm = dims();
    if (dm.padding == 0) return image;
    const std::size_t pitch = padded_pitch();
    for (std::size_t iy = 0; iy < dm.height; ++iy)
      std::memcpy(padded.data() + (iy + dm.padding) * pitch + dm.padding * dm.in_channels,
                  image + iy * dm.width * dm.in_channels, dm.width * dm.in_channels * sizeof(value_type));
    return padded.data();
  }

  // `read_patches` without the patches for one or two registers' worth of kernels: each
  // position's sums are formed from the (padded) image by broadcasting its values against the
  // transposed kernels; then `finish(s)` runs on the sample.
  template <class Finish>
  void correlate_wide(const value_type* x, std::size_t n, value_type* pre, const Finish& finish) const {
    using T = value_type;
    const auto dm = dims();
    const std::size_t K = kernel_inputs(), C = dm.channels;
    static thread_local std::vector<T> transposed;
    transposed.resize(K * C);
    const T* w = this->tile.weight_data();
    for (std::size_t o = 0; o < C; ++o)
      for (std::size_t k = 0; k < K; ++k) transposed[k * C + o] = w[o * K + k];
    const T* wt = transposed.data();
    for_samples(n, positions() * K, [&](std::size_t s0, std::size_t s1) {
      const simd::kernel_work_pause uncounted;  // counted once below, on the calling thread
      static thread_local std::vector<T> padded;
      clear_padded(padded);
      for (std::size_t s = s0; s < s1; ++s) {
        simd::correlate_wide<T>(C, dm.in_channels, dm.kernel, dm.stride, wt, padded_image(x + s * dm.in_size, padded),
                                padded_pitch(), dm.out_height, dm.out_width, pre + s * dm.out_height * dm.out_width * C);
        finish(s);
      }
    });
    const std::uint64_t outputs = std::uint64_t(n) * positions() * C;
    simd::detail::count_kernel_work(2 * outputs * K, std::uint64_t(n) * dm.in_size + C * K + outputs, sizeof(T));
  }

  // `backward_read_at` of an exact kernel without patches: the kernels laid out by kernel row
  // (each row's taps padded to whole registers), then every image's errors summed back into a
  // zero-padded image whose interior is the input's error.
  void correlate_adjoint(const value_type* delta, std::size_t n, value_type* dx) const {
    using T = value_type;
    const auto dm = dims();
    const std::size_t C = dm.channels, K = kernel_inputs(), run = dm.kernel * dm.in_channels;
    const std::size_t VW = simd::correlate_adjoint_registers<T>(dm.kernel, dm.in_channels) * simd::lanes<T>;
    static thread_local std::vector<T> by_row;
    by_row.assign(dm.kernel * C * VW, T(0));
    const T* w = this->tile.weight_data();
    for (std::size_t ky = 0; ky < dm.kernel; ++ky)
      for (std::size_t o = 0; o < C; ++o)
        std::copy(w + o * K + ky * run, w + o * K + (ky + 1) * run, by_row.data() + (ky * C + o) * VW);
    const T* kp = by_row.data();
    const std::size_t padded_rows = dm.height + 2 * dm.padding;
    const std::size_t pitch = simd::correlate_adjoint_pitch<T>((dm.width + 2 * dm.padding) * dm.in_channels, dm.kernel,
                                                               dm.in_channels, dm.stride, dm.out_width);
    const std::size_t scratch_size = simd::correlate_adjoint_scratch<T>(dm.kernel, dm.in_channels, dm.out_width);
    for_samples(n, positions() * K, [&](std::size_t s0, std::size_t s1) {
      const simd::kernel_work_pause uncounted;  // counted once below, on the calling thread
      static thread_local std::vector<T> image, scratch;
      image.resize(padded_rows * pitch);
      scratch.assign(scratch_size, T(0));
      for (std::size_t s = s0; s < s1; ++s) {
        std::fill(image.begin(), image.end(), T(0));
        simd::correlate_adjoint<T>(C, dm.in_channels, dm.kernel, dm.stride, kp, delta + s * positions() * C,
                                   dm.out_height, dm.out_width, image.data(), pitch, scratch.data());
        for (std::size_t iy = 0; iy < dm.height; ++iy)
          std::memcpy(dx + s * dm.in_size + iy * dm.width * dm.in_channels,
                      image.data() + (iy + dm.padding) * pitch + dm.padding * dm.in_channels,
                      dm.width * dm.in_channels * sizeof(T));
      }
    });
    const std::uint64_t outputs = std::uint64_t(n) * positions() * C;
    simd::detail::count_kernel_work(2 * outputs * K, outputs + C * K + std::uint64_t(n) * dm.in_size, sizeof(T));
  }

  // The sizes the loops run over: static constants of a fixed shape, so that loops in the
  // thread team's lambdas keep compile-time bounds (a captured local would be a run-time
  // value there), or the run-time geometry's.
  struct fixed_dims {
    static constexpr std::size_t height = Shape::height, width = Shape::width, in_channels = Shape::in_channels,
                                 kernel = Shape::kernel, stride = Shape::stride, padding = Shape::padding,
                                 out_height = Shape::out_height, out_width = Shape::out_width,
                                 channels = Shape::out_channels, pooled_height = out_height / Pool::window,
                                 pooled_width = out_width / Pool::window, in_size = Shape::in_size,
                                 out_size = pooled_height * pooled_width * channels,
                                 pre_size = out_height * out_width * channels;
  };
  struct run_dims {
    std::size_t height, width, in_channels, kernel, stride, padding, out_height, out_width, channels, pooled_height,
        pooled_width, in_size, out_size, pre_size;
  };
  [[nodiscard]] auto dims() const noexcept {
    if constexpr (is_static) {
      return fixed_dims{};
    } else {
      const conv_geometry& g = geometry_;
      const std::size_t oh = g.out_height(), ow = g.out_width();
      return run_dims{g.height,       g.width,   g.in_channels, g.kernel,    g.stride,
                      g.padding,      oh,        ow,            g.out_channels, oh / Pool::window,
                      ow / Pool::window, g.in_size(), (oh / Pool::window) * (ow / Pool::window) * g.out_channels,
                      oh * ow * g.out_channels};
    }
  }

  struct no_geometry {};
  // The run-time geometry of a dynamic shape; nothing for a fixed one.
  [[no_unique_address]] std::conditional_t<is_static, no_geometry, conv_geometry> geometry_{};

  /// Calls `f(o, first)` for every pooled output `o` of one sample, in order, where `first` is
  /// the index of its window's top-left entry in the sample's pre-activation.
  template <class F>
  void for_each_window(F&& f) const {
    constexpr std::size_t S = Pool::window;
    const auto dm = dims();
    std::size_t o = 0;
    for (std::size_t py = 0; py < dm.pooled_height; ++py)
      for (std::size_t px = 0; px < dm.pooled_width; ++px) {
        const std::size_t corner = (py * S * dm.out_width + px * S) * dm.channels;
        for (std::size_t c = 0; c < dm.channels; ++c) f(o++, corner + c);
      }
  }

  /// Calls `f(k)` for the entries of the window whose top-left entry is `first`, row by row.
  template <class F>
  void for_window(std::size_t first, F&& f) const {
    constexpr std::size_t S = Pool::window;
    const auto dm = dims();
    const std::size_t C = dm.channels, row = dm.out_width * C;
    for (std::size_t wy = 0; wy < S; ++wy)
      for (std::size_t wx = 0; wx < S; ++wx) f(first + wy * row + wx * C);
  }

  /// The entry of the window at `first` where `values` is first largest: the one max pooling
  /// passes on. Selects without branches: which entry wins is data, not a pattern to predict.
  std::size_t first_max(const value_type* values, std::size_t first) const noexcept {
    std::size_t best = first;
    value_type top = values[first];
    for_window(first, [&](std::size_t k) {
      const value_type v = values[k];
      const bool larger = v > top;
      best = larger ? k : best;
      top = larger ? v : top;
    });
    return best;
  }

  /// The values pooling compares, for n samples: f(a) in one vectorised pass, or `a` itself
  /// when the maximum of a is the maximum of f(a) (`pools_before_activation`).
  const value_type* values_pooled(const value_type* a, std::size_t n) const {
    [[maybe_unused]] const auto dm = dims();
    if constexpr (pools_before_activation) {
      return a;
    } else {
      static thread_local std::vector<value_type> activated;
      activated.resize(n * dm.pre_size);
      simd::map<value_type>(n * dm.pre_size, a, activated.data(), this->activation);
      return activated.data();
    }
  }

  // Runs `f(s0, s1)` over disjoint ranges of samples on the kernels' threads
  // (`pnn::set_num_threads`): each sample's values are computed alone, so the result does not
  // depend on the split. A thread gets at least ~16k values: these passes run at a few values
  // per cycle, so a smaller share would cost more to hand out than it saves. The split is
  // static: `f` sets up per call (padded planes, buffers), and handing out smaller claimed
  // runs repeated that setup for more than the waiting it saved (measured on LeNet-5).
  template <class F>
  static void for_samples(std::size_t n, std::size_t values_per_sample, F&& f) {
    ::pnn::detail::parallel_team(n * values_per_sample / 16384, [&](std::size_t t, std::size_t team) noexcept {
      const auto [s0, s1] = ::pnn::detail::team_range(n, 1, t, team);
      if (s0 < s1) f(s0, s1);
    });
  }

  // Copies one position's c channels (c ≥ 1): up to 16 values as two fixed-size moves that
  // overlap in the middle, so a run-time channel count costs no call or element loop (a fixed
  // one folds the choice away).
  static void copy_channels(value_type* dst, const value_type* src, std::size_t c) noexcept {
    using T = value_type;
    const auto two = [&](auto k) {
      constexpr std::size_t K = decltype(k)::value;
      T head[K], tail[K];
      std::memcpy(head, src, K * sizeof(T));
      std::memcpy(tail, src + c - K, K * sizeof(T));
      std::memcpy(dst, head, K * sizeof(T));
      std::memcpy(dst + c - K, tail, K * sizeof(T));
    };
    if (c >= 8 && c <= 16) two(std::integral_constant<std::size_t, 8>{});
    else if (c >= 4 && c < 8) two(std::integral_constant<std::size_t, 4>{});
    else if (c >= 2 && c < 4) two(std::integral_constant<std::size_t, 2>{});
    else if (c == 1) *dst = *src;
    else std::memcpy(dst, src, c * sizeof(T));
  }

  // `output_delta` for max pooling before a nondecreasing activation (the maxima are found in
  // `a` itself). 2 × 2 windows of fewer channels than a register's lanes go in the rows' own
  // layout (`max_pool2_delta`). Otherwise, per row of windows, each window entry's channels
  // are gathered into a plane indexed like the pooled outputs (px, c), so the first-maximum
  // search and the error's routing run a register of windows at a time with selects: which
  // entry wins is data, and a scalar search became mispredicted branches. Every entry of a
  // window is written (the error at its first maximum, zero elsewhere), so `delta` is cleared
  // only where windows leave rows or columns uncovered.
  void max_pool_delta(const value_type* up, const value_type* a, const value_type* h, std::size_t n,
                      value_type* delta) const {
    using T = value_type;
    using P = simd::pack<T, simd::default_arch>;
    constexpr std::size_t S = Pool::window, SS = S * S;
    [[maybe_unused]] const auto dims_here = dims();
    for_samples(n, dims_here.pre_size, [&](std::size_t s0, std::size_t s1) {
      const auto dm = dims();
      const std::size_t C = dm.channels, row = dm.out_width * C, L = dm.pooled_width * C;
      if (dm.out_height % S != 0 || dm.out_width % S != 0)
        std::fill(delta + s0 * dm.pre_size, delta + s1 * dm.pre_size, T(0));
      // Where a position's channels fill less than a register, gathering them costs more than
      // finding each value's window neighbours in the rows' own layout.
      if constexpr (S == 2) {
        if (C < P::size) {
          max_pool2_delta(up, a, h, s0, s1, delta);
          return;
        }
      }
      static thread_local std::vector<T> work;
      work.resize((SS + 2) * L);
      T* plane = work.data();  // SS planes of L values: the window entries, then their errors
      T* best = plane + SS * L;
      T* g = best + L;
      std::size_t offset[SS];
      for (std::size_t w = 0; w < SS; ++w) offset[w] = (w / S) * row + (w % S) * C;
      const std::size_t vec_end = L - L % P::size;
      for (std::size_t s = s0; s < s1; ++s) {
        const T* as = a + s * dm.pre_size;
        T* ds = delta + s * dm.pre_size;
        for (std::size_t py = 0; py < dm.pooled_height; ++py) {
          const std::size_t row0 = py * S * row, o = py * L;
          for (std::size_t w = 0; w < SS; ++w)
            for (std::size_t px = 0; px < dm.pooled_width; ++px)
              copy_channels(plane + w * L + px * C, as + row0 + px * S * C + offset[w], C);
          // The first maximum: a later entry wins only when strictly larger.
          std::size_t q = 0;
          for (; q < vec_end; q += P::size) {
            P top = P::load_unaligned(plane + q), at(T(0));
            for (std::size_t w = 1; w < SS; ++w) {
              const P v = P::load_unaligned(plane + w * L + q);
              at = simd::where_greater(v, top, P(T(w)), at);
              top = simd::where_greater(v, top, v, top);
            }
            at.store_unaligned(best + q);
            top.store_unaligned(g + q);
          }
          for (; q < L; ++q) {
            T top = plane[q], at = T(0);
            for (std::size_t w = 1; w < SS; ++w) {
              const T v = plane[w * L + q];
              at = v > top ? T(w) : at;
              top = v > top ? v : top;
            }
            best[q] = at;
            g[q] = top;
          }
          const T* us = up + s * dm.out_size + o;
          const T* hs = h + s * dm.out_size + o;
          simd::times_derivative<T>(L, us, g, hs, this->activation, g);
          for (q = 0; q < vec_end; q += P::size) {
            const P at = P::load_unaligned(best + q), gq = P::load_unaligned(g + q);
            for (std::size_t w = 0; w < SS; ++w)
              simd::where_equal(at, P(T(w)), gq, P(T(0))).store_unaligned(plane + w * L + q);
          }
          for (; q < L; ++q)
            for (std::size_t w = 0; w < SS; ++w) plane[w * L + q] = best[q] == T(w) ? g[q] : T(0);
          for (std::size_t w = 0; w < SS; ++w)
            for (std::size_t px = 0; px < dm.pooled_width; ++px)
              copy_channels(ds + row0 + px * S * C + offset[w], plane + w * L + px * C, C);
        }
      }
    });
  }

  // `max_pool_delta` of 2 × 2 windows for samples [s0, s1), in the rows' own layout: each value
  // finds its window's other entries C and one row apart (two neighbours in a row of windows
  // alternate, so a precomputed 0/1 column parity picks the left or right one), and the search
  // and routing run a register of row values at a time. Only the window maxima go through a
  // pooled-layout copy, for the derivative, with the same arithmetic as the general case, so
  // both give the same bits: the first maximum in row-major order wins.
  void max_pool2_delta(const value_type* up, const value_type* a, const value_type* h, std::size_t s0,
                       std::size_t s1, value_type* delta) const {
    using T = value_type;
    using P = simd::pack<T, simd::default_arch>;
    const auto dm = dims();
    const std::size_t C = dm.channels, row = dm.out_width * C, L = dm.pooled_width * C, W = 2 * L;
    const std::size_t span = (W + P::size - 1) / P::size * P::size;  // whole registers of a row
    static thread_local std::vector<T> work;
    // Two input rows padded by C on either side, the column parity, the window maxima and the
    // search's winners, the errors (row layout), a last partial register of each row of δ, the
    // errors in the pooled layout.
    const std::size_t padded = span + 2 * C;
    work.assign(2 * padded + 4 * span + 2 * P::size + L, T(0));
    T* r0 = work.data();
    T* r1 = r0 + padded;
    T* right = r1 + padded;
    T* top = right + span;
    T* at = top + span;
    T* ge = at + span;
    T* d0 = ge + span;
    T* d1 = d0 + P::size;
    T* g = d1 + P::size;
    for (std::size_t j = 0; j < W; ++j) right[j] = T((j / C) % 2);
    const P one(T(1)), two(T(2)), three(T(3)), zero(T(0));
    for (std::size_t s = s0; s < s1; ++s) {
      const T* as = a + s * dm.pre_size;
      T* ds = delta + s * dm.pre_size;
      for (std::size_t py = 0; py < dm.pooled_height; ++py) {
        const std::size_t row0 = py * 2 * row, o = py * L;
        // p0 + C and p1 + C start the two rows; a register reads C values either side of its
        // own, which the sample's other rows supply where they exist, else the padded copies.
        const T* p0 = as + row0 - C;
        const T* p1 = p0 + row;
        if (row0 < C || row0 + row + C + span > dm.pre_size) {
          std::memcpy(r0 + C, as + row0, W * sizeof(T));
          std::memcpy(r1 + C, as + row0 + row, W * sizeof(T));
          p0 = r0;
          p1 = r1;
        }
        for (std::size_t j = 0; j < span; j += P::size) {
          const P odd = P::load_unaligned(right + j);
          const P a0 = P::load_unaligned(p0 + C + j), a1 = P::load_unaligned(p1 + C + j);
          // The window's entries in row-major order: top left, top right, bottom left, bottom right.
          const P e0 = simd::where_equal(odd, one, P::load_unaligned(p0 + j), a0);
          const P e1 = simd::where_equal(odd, one, a0, P::load_unaligned(p0 + 2 * C + j));
          const P e2 = simd::where_equal(odd, one, P::load_unaligned(p1 + j), a1);
          const P e3 = simd::where_equal(odd, one, a1, P::load_unaligned(p1 + 2 * C + j));
          P best = e0, w = zero;
          w = simd::where_greater(e1, best, one, w);
          best = simd::where_greater(e1, best, e1, best);
          w = simd::where_greater(e2, best, two, w);
          best = simd::where_greater(e2, best, e2, best);
          w = simd::where_greater(e3, best, three, w);
          best = simd::where_greater(e3, best, e3, best);
          best.store_unaligned(top + j);
          w.store_unaligned(at + j);
        }
        for (std::size_t px = 0; px < dm.pooled_width; ++px) copy_channels(g + px * C, top + 2 * px * C, C);
        const T* us = up + s * dm.out_size + o;
        const T* hs = h + s * dm.out_size + o;
        simd::times_derivative<T>(L, us, g, hs, this->activation, g);
        for (std::size_t px = 0; px < dm.pooled_width; ++px) {
          copy_channels(ge + 2 * px * C, g + px * C, C);
          copy_channels(ge + 2 * px * C + C, g + px * C, C);
        }
        // Whole registers go straight into δ's rows; the last, partial one through a buffer.
        std::size_t j = 0;
        const auto route = [&](std::size_t k, T* to0, T* to1) {
          const P w = P::load_unaligned(at + k), e = P::load_unaligned(ge + k);
          const P odd = P::load_unaligned(right + k);
          simd::where_equal(w, odd, e, zero).store_unaligned(to0);
          simd::where_equal(w, odd + two, e, zero).store_unaligned(to1);
        };
        for (; j + P::size <= W; j += P::size) route(j, ds + row0 + j, ds + row0 + row + j);
        if (j < W) {
          route(j, d0, d1);
          std::memcpy(ds + row0 + j, d0, (W - j) * sizeof(T));
          std::memcpy(ds + row0 + row + j, d1, (W - j) * sizeof(T));
        }
      }
    }
  }

  // h = pool(f(pre)) over non-overlapping windows; `pre` holds the biased convolution outputs.
  // f runs vectorised: over the pooled values when it commutes with the maximum, else over
  // every position first.
  void pool_forward(const value_type* pre, std::size_t n, value_type* h) const {
    [[maybe_unused]] const auto dm = dims();
    using T = value_type;
    static thread_local std::vector<T> activated;
    const T* src = pre;
    if constexpr (!pools_before_activation) {
      activated.resize(n * dm.pre_size);
      simd::map<T>(n * dm.pre_size, pre, activated.data(), this->activation);
      src = activated.data();
    }
    for_samples(n, dm.pre_size, [&](std::size_t s0, std::size_t s1) {
      for (std::size_t s = s0; s < s1; ++s) pool_sample(src + s * dm.pre_size, h + s * dm.out_size);
    });
    if constexpr (pools_before_activation) simd::map<T>(n * dm.out_size, h, h, this->activation);
  }

  // One sample's pooling: `hs` (out_size values) from `ps` (pre_size values).
  // Max pooling takes each window row's maxima over its S rows register by register first
  // (the rows are contiguous), then over the S positions of each window, so that only a
  // window row's worth of values is compared element by element (with 6 channels, nothing of
  // a window is a whole register).
  void pool_sample(const value_type* ps, value_type* hs) const noexcept {
    [[maybe_unused]] const auto dm = dims();
    using T = value_type;
    constexpr std::size_t S = Pool::window;
    if constexpr (detail::is_max_pool_v<Pool> && !simd::is_scalar_arch<simd::default_arch>) {
      using P = simd::pack<T, simd::default_arch>;
      const std::size_t C = dm.channels, row = dm.out_width * C, span = dm.pooled_width * S * C;
      static thread_local std::vector<T> rows_max;
      rows_max.resize(span);
      T* m = rows_max.data();
      const std::size_t vec_end = span - span % P::size;
      for (std::size_t py = 0; py < dm.pooled_height; ++py) {
        const T* r = ps + py * S * row;
        for (std::size_t i = 0; i < vec_end; i += P::size) {
          P best = P::load_unaligned(r + i);
          for (std::size_t wy = 1; wy < S; ++wy) {
            const P v = P::load_unaligned(r + wy * row + i);
            best = simd::where_greater(v, best, v, best);
          }
          best.store_unaligned(m + i);
        }
        for (std::size_t i = vec_end; i < span; ++i) {
          T best = r[i];
          for (std::size_t wy = 1; wy < S; ++wy) best = r[wy * row + i] > best ? r[wy * row + i] : best;
          m[i] = best;
        }
        T* out = hs + py * dm.pooled_width * C;
        for (std::size_t px = 0; px < dm.pooled_width; ++px)
          for (std::size_t c = 0; c < C; ++c) {
            const T* w = m + px * S * C + c;
            T best = w[0];
            for (std::size_t wx = 1; wx < S; ++wx) best = w[wx * C] > best ? w[wx * C] : best;
            out[px * C + c] = best;
          }
      }
    } else {
      for (std::size_t py = 0; py < dm.pooled_height; ++py)
        for (std::size_t px = 0; px < dm.pooled_width; ++px) {
          T* out = hs + (py * dm.pooled_width + px) * dm.channels;
          const T* corner = ps + ((py * S) * dm.out_width + px * S) * dm.channels;
          for (std::size_t c = 0; c < dm.channels; ++c) out[c] = corner[c];
          for (std::size_t wy = 0; wy < S; ++wy)
            for (std::size_t wx = (wy == 0 ? 1 : 0); wx < S; ++wx) {
              const T* v = ps + ((py * S + wy) * dm.out_width + (px * S + wx)) * dm.channels;
              for (std::size_t c = 0; c < dm.channels; ++c) {
                if constexpr (detail::is_max_pool_v<Pool>) out[c] = v[c] > out[c] ? v[c] : out[c];
                else out[c] += v[c];
              }
            }
          if constexpr (detail::is_avg_pool_v<Pool>)
            for (std::size_t c = 0; c < dm.channels; ++c) out[c] /= T(S * S);
        }
    }
  }

  // pb[c] += the sum of d[i] over i ≡ c (mod C), i < count: register by register over
  // lcm(C, lanes) values at a time, then folded into the channels (with 6 channels, an
  // element loop ran one addition per cycle through the six sums in memory). The order of
  // the additions depends only on count and C.
  static void add_channel_sums(const value_type* d, std::size_t count, std::size_t C, value_type* pb) noexcept {
    using T = value_type;
    std::size_t i = 0;
    if constexpr (!simd::is_scalar_arch<simd::default_arch>) {
      using P = simd::pack<T, simd::default_arch>;
      const std::size_t period = std::lcm(C, P::size);
      if (period <= 16 * P::size && count >= 2 * period) {
        alignas(64) T acc[16 * P::size];
        for (std::size_t j = 0; j < period; j += P::size) P::load_unaligned(d + j).store_aligned(acc + j);
        const std::size_t whole = count - count % period;
        for (i = period; i < whole; i += period)
          for (std::size_t j = 0; j < period; j += P::size)
            (P::load_aligned(acc + j) + P::load_unaligned(d + i + j)).store_aligned(acc + j);
        for (std::size_t j = 0; j < period; ++j) pb[j % C] += acc[j];
      }
    }
    for (std::size_t c = 0; i < count; ++i) {
      pb[c] += d[i];
      if (++c == C) c = 0;
    }
  }

  // The bias repeated over a whole number of registers (lcm(channels, lanes) values), so that
  // a sample's positions × channels outputs get it register by register whatever the channel
  // count (`bias_map` over rows of 6 channels ran element by element).
  struct bias_pattern {
    std::vector<value_type>& values;
    std::size_t period;
    explicit bias_pattern(const conv2d& l)
        : values(buffer()), period(std::lcm(l.channels(), simd::lanes<value_type>)) {
      values.resize(period);
      const value_type* b = l.tile.bias_data();
      for (std::size_t i = 0; i < period; ++i) values[i] = b[i % l.channels()];
    }
    static std::vector<value_type>& buffer() {
      static thread_local std::vector<value_type> v;
      return v;
    }
  };

  // `f` over n values, register by register to the last value (the remainder padded), so that
  // each value is computed the same way wherever a range of samples starts or ends.
  template <class F>
  static void map_whole_registers(std::size_t n, const value_type* x, value_type* y, const F& f) noexcept {
    using T = value_type;
    if constexpr (simd::vectorised_function<F, T, simd::default_arch>) {
      using P = simd::pack<T, simd::default_arch>;
      const std::size_t vec_end = n - n % P::size;
      simd::map<T>(vec_end, x, y, f);
      if (vec_end < n) {
        alignas(64) T tail[P::size] = {};
        std::copy(x + vec_end, x + n, tail);
        f(P::load_unaligned(tail)).store_unaligned(tail);
        std::copy(tail, tail + (n - vec_end), y + vec_end);
      }
    } else {
      simd::map<T>(n, x, y, f);
    }
  }

  // Sample s of a forward pass after its correlation: `pre` += bias, then h = pool(f(pre)),
  // exactly as `add_bias` and `pool_forward` compute it over the batch (the values computed
  // register by register there are so here).
  void finish_sample(value_type* pre, value_type* h, std::size_t s, const bias_pattern& bias) const noexcept {
    using T = value_type;
    using P = simd::pack<T, simd::default_arch>;
    [[maybe_unused]] const auto dm = dims();
    T* ps = pre + s * dm.pre_size;
    T* hs = h + s * dm.out_size;
    const std::size_t whole = dm.pre_size - dm.pre_size % bias.period;
    const T* b = bias.values.data();
    for (std::size_t i = 0; i < whole; i += bias.period)
      for (std::size_t j = 0; j < bias.period; j += P::size)
        (P::load_unaligned(ps + i + j) + P::load_unaligned(b + j)).store_unaligned(ps + i + j);
    for (std::size_t i = whole; i < dm.pre_size; ++i) ps[i] += b[i - whole];
    if constexpr (pools_before_activation) {
      pool_sample(ps, hs);
      map_whole_registers(dm.out_size, hs, hs, this->activation);
    } else {
      static thread_local std::vector<T> activated;
      activated.resize(dm.pre_size);
      map_whole_registers(dm.pre_size, ps, activated.data(), this->activation);
      pool_sample(activated.data(), hs);
    }
  }
};

/// True for instantiations of `pnn::conv2d`.
template <class L>
inline constexpr bool is_conv_v = false;
template <class Sh, class S, class N, class A, class P>
inline constexpr bool is_conv_v<conv2d<Sh, S, N, A, P>> = true;

namespace detail {
template <class Sh, class S0, class N0, class A, class P, class S, class N>
struct rebind_layer<conv2d<Sh, S0, N0, A, P>, S, N> {
  using type = conv2d<Sh, S, N, A, P>;
};
}  // namespace detail

}  // namespace pnn
