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

// Every shipped rule is a learning_rule (what `train` requires); other types are not.
using mlp = network<dense<dynamic, dynamic, physics::digital, noise::none, act::tanh>,
                    dense<dynamic, dynamic, physics::digital>>;
using ce = loss::softmax_cross_entropy;
static_assert(learning_rule<learn::backprop<>, mlp, ce>);
static_assert(learning_rule<learn::backprop<optim::adam>, mlp, ce>);
static_assert(learning_rule<learn::physics_aware<>, mlp, ce>);
static_assert(learning_rule<learn::feedback_alignment<>, mlp, ce>);
static_assert(learning_rule<learn::direct_feedback_alignment<optim::momentum>, mlp, ce>);
static_assert(learning_rule<learn::forward_gradient<>, mlp, ce>);
static_assert(learning_rule<learn::weight_perturbation<>, mlp, ce>);
static_assert(learning_rule<learn::node_perturbation<>, mlp, ce>);
static_assert(learning_rule<learn::spsa<optim::spsa_gain>, mlp, ce>);
static_assert(learning_rule<learn::forward_forward<>, mlp, ce>);
using energy = network<dense<dynamic, dynamic, physics::digital, noise::none, act::hard_sigmoid>,
                       dense<dynamic, dynamic, physics::digital, noise::none, act::hard_sigmoid>>;
static_assert(learning_rule<learn::equilibrium_propagation<>, energy, loss::mse>);
static_assert(learning_rule<learn::coupled_learning<>, energy, loss::mse>);
static_assert(!learning_rule<optim::sgd, mlp, ce>);
static_assert(!learning_rule<int, mlp, ce>);
struct estimate_only {
  template <class Net, class X, class Y, class L>
  gradients<Net> estimate(Net& n, const X&, const Y&, const L&, rng&) { return gradients<Net>(n); }
};
static_assert(!learning_rule<estimate_only, mlp, ce>);
}  // namespace
