// SPDX-License-Identifier: MIT
// Compile-time checks: the concepts accept our policies and reject what is not one.
#include <pnn/pnn.hpp>

namespace {
using namespace pnn;
static_assert(substrate<physics::digital>);
static_assert(transposed_readable<physics::basic_digital<double>>);
static_assert(!substrate<int>);
static_assert(!substrate<act::tanh>);
static_assert(activation<act::tanh>);
static_assert(!activation<int>);
static_assert(!activation<physics::digital>);
static_assert(noise_policy<noise::none>);
static_assert(!has_output_stage<noise::none>);
static_assert(loss_function<loss::mse>);
static_assert(!loss_function<act::relu>);
static_assert(dense_tile<physics::digital::tile<3, 2>>);

// Consecutive fixed extents must agree (network<> static_asserts on this).
static_assert(detail::adjacent_extents_agree<dense<4, 5, physics::digital>, dense<5, 2, physics::digital>>());
static_assert(!detail::adjacent_extents_agree<dense<4, 5, physics::digital>, dense<6, 2, physics::digital>>());
static_assert(detail::adjacent_extents_agree<dense<4, dynamic, physics::digital>, dense<6, 2, physics::digital>>());

using small = network<dense<16, 8, physics::digital, noise::none, act::tanh>, dense<8, 4, physics::digital>>;
static_assert(small::num_layers == 2 && small::is_static);
static_assert(std::is_trivially_copyable_v<small::layer_type<0>::tile_type>);
static_assert(optimizer<optim::adam, small>);
}  // namespace
