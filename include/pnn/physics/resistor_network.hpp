// SPDX-License-Identifier: MIT
/// \file
/// \brief `physics::resistor_network`: a linear resistor network that settles into the state of
/// least dissipated power, the substrate of coupled learning (Stern et al., PRX 2021).
///
/// A graph of edges with conductances `k_e` (µS). Voltages (V) are imposed on the source
/// (input) nodes and ground nodes (0 V); the remaining free nodes, among them the outputs, settle
/// where the dissipated power `P = ½ Σ_e k_e (ΔV_e)²` is least (docs/physics.md), i.e. where the
/// weighted-Laplacian system `L_ff V_f = −L_fs V_s` holds. The clamped state of coupled learning
/// also holds the outputs and solves the same system over the remaining nodes. Both systems are
/// symmetric positive definite when every free node is connected to a held node; they are
/// factorised once per conductance state by dense Cholesky (O(n³) for n free nodes: fine for the
/// few hundred nodes such experiments use), and each sample is then two triangular solves.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>

namespace pnn::physics {

/// A resistor network with source, ground and output nodes (double precision throughout).
class resistor_network {
 public:
  using value_type = double;
  static constexpr const char* name = "resistor_network";

  /// A resistor between nodes `from` and `to` with conductance `conductance` (µS).
  struct edge {
    std::size_t from = 0;
    std::size_t to = 0;
    double conductance = 1.0;
  };
  /// Physical limits of the resistors.
  struct params {
    double k_min = 1e-3;  ///< smallest conductance a resistor can be programmed to (µS), > 0
  };

  resistor_network() = default;

  /// \pre nodes, edges and the node lists are consistent: indices < `nodes`, no self-loops,
  ///      conductances ≥ `p.k_min` > 0, sources/ground/outputs disjoint, outputs not empty, and
  ///      every free node connected to a source or ground node (else `pnn::error`).
  resistor_network(std::size_t nodes, std::vector<edge> edges, std::vector<std::size_t> sources,
                   std::vector<std::size_t> outputs, std::vector<std::size_t> ground, params p)
      : nodes_(nodes), edges_(std::move(edges)), sources_(std::move(sources)), outputs_(std::move(outputs)),
        ground_(std::move(ground)), params_(p) {
    if (!(params_.k_min > 0)) throw_error("resistor_network: k_min must be positive");
    if (sources_.empty() && ground_.empty()) throw_error("resistor_network: needs at least one source or ground node");
    if (outputs_.empty()) throw_error("resistor_network: needs at least one output node");
    std::vector<int> role(nodes_, 0);
    auto mark = [&](const std::vector<std::size_t>& v, int r, const char* what) {
      for (std::size_t i : v) {
        if (i >= nodes_) throw_error(std::string("resistor_network: ") + what + " node " + std::to_string(i) + " >= " + std::to_string(nodes_) + " nodes");
        if (role[i] != 0) throw_error("resistor_network: node " + std::to_string(i) + " is listed twice");
        role[i] = r;
      }
    };
    mark(sources_, 1, "source");
    mark(ground_, 2, "ground");
    mark(outputs_, 3, "output");
    for (const auto& e : edges_) {
      if (e.from >= nodes_ || e.to >= nodes_ || e.from == e.to)
        throw_error("resistor_network: edge (" + std::to_string(e.from) + ", " + std::to_string(e.to) + ") is not between two distinct nodes");
      if (!(e.conductance >= params_.k_min) || !std::isfinite(e.conductance))
        throw_error("resistor_network: conductance " + std::to_string(e.conductance) + " µS is below k_min or not finite");
    }
    free_ = system(role, false);
    clamped_ = system(role, true);
    factorise();
  }

  /// As above with default `params`.
  resistor_network(std::size_t nodes, std::vector<edge> edges, std::vector<std::size_t> sources,
                   std::vector<std::size_t> outputs, std::vector<std::size_t> ground = {})
      : resistor_network(nodes, std::move(edges), std::move(sources), std::move(outputs), std::move(ground), params{}) {}

  /// A random connected network: a spanning chain over a random node order plus random extra
  /// edges, conductances uniform in [k_lo, k_hi] µS. Nodes 0..inputs−1 are sources, the next
  /// `outputs` are outputs, node `nodes − 1` is ground.
  static resistor_network random(std::size_t nodes, std::size_t edges, std::size_t inputs, std::size_t outputs, rng& g,
                                 double k_lo = 0.5, double k_hi = 1.5) {
    PNN_EXPECTS(nodes >= inputs + outputs + 2 && edges >= nodes - 1, "resistor_network::random: too few nodes or edges");
    std::vector<std::size_t> order(nodes);
    for (std::size_t i = 0; i < nodes; ++i) order[i] = i;
    for (std::size_t i = nodes - 1; i > 0; --i) std::swap(order[i], order[g.uniform_int(static_cast<std::uint32_t>(i + 1))]);
    std::vector<edge> es;
    auto k = [&] { return k_lo + (k_hi - k_lo) * g.uniform_double(); };
    for (std::size_t i = 0; i + 1 < nodes; ++i) es.push_back({order[i], order[i + 1], k()});
    while (es.size() < edges) {
      const std::size_t a = g.uniform_int(static_cast<std::uint32_t>(nodes));
      const std::size_t b = g.uniform_int(static_cast<std::uint32_t>(nodes));
      if (a != b) es.push_back({a, b, k()});
    }
    std::vector<std::size_t> src(inputs), out(outputs);
    for (std::size_t i = 0; i < inputs; ++i) src[i] = i;
    for (std::size_t i = 0; i < outputs; ++i) out[i] = inputs + i;
    return resistor_network(nodes, std::move(es), std::move(src), std::move(out), {nodes - 1}, params{});
  }

  /// The single-stage network a `resistor_substrate` layer starts from: every input node `i`
  /// joined to every output node `o` by a resistor, and every output to ground by a load
  /// resistor — the output voltage is the conductance-weighted mean
  /// `V_o = Σ_i k_oi V_i / (Σ_i k_oi + k_o,load)`. Nodes: inputs `0…In−1`, outputs
  /// `In…In+Out−1`, ground `In+Out`; edge `o·(In+1) + i` joins input `i` to output `o`, edge
  /// `o·(In+1) + In` is output `o`'s load. Every conductance starts at `k` µS.
  /// \pre inputs, outputs ≥ 1; `k` ≥ `p.k_min` (else `pnn::error`).
  static resistor_network single_stage(std::size_t inputs, std::size_t outputs, double k, params p) {
    PNN_EXPECTS(inputs >= 1 && outputs >= 1, "resistor_network::single_stage: needs at least one input and one output");
    std::vector<edge> es;
    es.reserve(outputs * (inputs + 1));
    const std::size_t ground = inputs + outputs;
    for (std::size_t o = 0; o < outputs; ++o) {
      for (std::size_t i = 0; i < inputs; ++i) es.push_back({i, inputs + o, k});
      es.push_back({inputs + o, ground, k});
    }
    std::vector<std::size_t> src(inputs), out(outputs);
    for (std::size_t i = 0; i < inputs; ++i) src[i] = i;
    for (std::size_t o = 0; o < outputs; ++o) out[o] = inputs + o;
    return resistor_network(inputs + outputs + 1, std::move(es), std::move(src), std::move(out), {ground}, p);
  }

  /// As above with default `params`.
  static resistor_network single_stage(std::size_t inputs, std::size_t outputs, double k) {
    return single_stage(inputs, outputs, k, params{});
  }

  [[nodiscard]] std::size_t num_nodes() const noexcept { return nodes_; }
  [[nodiscard]] std::size_t num_edges() const noexcept { return edges_.size(); }
  [[nodiscard]] std::size_t num_inputs() const noexcept { return sources_.size(); }
  [[nodiscard]] std::size_t num_outputs() const noexcept { return outputs_.size(); }
  [[nodiscard]] const std::vector<edge>& edges() const noexcept { return edges_; }
  [[nodiscard]] const std::vector<std::size_t>& source_nodes() const noexcept { return sources_; }
  [[nodiscard]] const std::vector<std::size_t>& output_nodes() const noexcept { return outputs_; }
  [[nodiscard]] const std::vector<std::size_t>& ground_nodes() const noexcept { return ground_; }
  [[nodiscard]] const params& parameters() const noexcept { return params_; }

  /// The conductances (µS), one per edge.
  [[nodiscard]] std::vector<double> conductances() const {
    std::vector<double> k(edges_.size());
    for (std::size_t e = 0; e < edges_.size(); ++e) k[e] = edges_[e].conductance;
    return k;
  }
  /// Sets every conductance (µS). \pre `k` has `num_edges()` finite values ≥ k_min.
  void set_conductances(const std::vector<double>& k) {
    PNN_EXPECTS(k.size() == edges_.size(), "resistor_network: one conductance per edge");
    for (double v : k)
      if (!(v >= params_.k_min) || !std::isfinite(v)) throw_error("resistor_network: conductance below k_min or not finite");
    for (std::size_t e = 0; e < edges_.size(); ++e) edges_[e].conductance = k[e];
    factorise();
  }
  /// Programs an update: `k ← max(k − Δk, k_min)` (the clip of coupled learning).
  void program(const std::vector<double>& delta) {
    PNN_EXPECTS(delta.size() == edges_.size(), "resistor_network: one update per edge");
    for (double v : delta)
      if (!std::isfinite(v)) throw_error("resistor_network: update is not finite; conductances left unchanged");
    for (std::size_t e = 0; e < edges_.size(); ++e)
      edges_[e].conductance = std::max(edges_[e].conductance - delta[e], params_.k_min);
    factorise();
  }

  /// Free state: all node voltages `v` (n × nodes) for source voltages `vs` (n × inputs).
  void free_state(const double* vs, std::size_t n, double* v) const { settle(free_, vs, nullptr, n, v); }
  /// Clamped state: as `free_state`, with the outputs also held at `vo` (n × outputs).
  void clamped_state(const double* vs, const double* vo, std::size_t n, double* v) const {
    settle(clamped_, vs, vo, n, v);
  }
  /// Adjoint state: all node voltages `u` (n × nodes) when currents `current` (n × outputs, µA)
  /// are injected into the output nodes and every source and ground node is held at 0 V — a
  /// measurement on the same network. With `current = ∂L/∂V_out` it is the adjoint of the free
  /// state: `∂L/∂k_e = −(V_a − V_b)(U_a − U_b)` for edge `e = (a, b)` (docs/physics.md,
  /// "Resistor network").
  void adjoint_state(const double* current, std::size_t n, double* u) const {
    const std::size_t m = free_.unknown.size();
    std::vector<double> rhs(m);
    for (std::size_t r = 0; r < n; ++r) {
      double* ur = u + r * nodes_;
      std::fill(ur, ur + nodes_, 0.0);
      std::fill(rhs.begin(), rhs.end(), 0.0);
      for (std::size_t o = 0; o < outputs_.size(); ++o)
        rhs[std::size_t(free_.pos[outputs_[o]])] = current[r * outputs_.size() + o];
      solve(free_, rhs);
      for (std::size_t c = 0; c < m; ++c) ur[free_.unknown[c]] = rhs[c];
    }
  }

  /// Output voltages `y` (n × outputs) of node voltages `v` (n × nodes).
  void outputs(const double* v, std::size_t n, double* y) const {
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t o = 0; o < outputs_.size(); ++o) y[r * outputs_.size() + o] = v[r * nodes_ + outputs_[o]];
  }
  /// The energy function `½ Σ k_e ΔV_e²` of one state (µW for µS and V): what the free state
  /// minimises and coupled learning contrasts; the power the network dissipates is twice it.
  [[nodiscard]] double power(const double* v) const {
    double p = 0;
    for (const auto& e : edges_) {
      const double d = v[e.from] - v[e.to];
      p += 0.5 * e.conductance * d * d;
    }
    return p;
  }

 private:
  // One linear system: which nodes are unknown (`unknown`), their position (`pos`, −1 if held)
  // and the Cholesky factor of L restricted to them.
  struct linear_system {
    std::vector<std::size_t> unknown{};
    std::vector<long> pos{};
    std::vector<double> chol{};
    bool clamp_outputs = false;
  };

  linear_system system(const std::vector<int>& role, bool clamp_outputs) const {
    linear_system s;
    s.clamp_outputs = clamp_outputs;
    s.pos.assign(nodes_, -1);
    for (std::size_t i = 0; i < nodes_; ++i)
      if (role[i] == 0 || (role[i] == 3 && !clamp_outputs)) {
        s.pos[i] = static_cast<long>(s.unknown.size());
        s.unknown.push_back(i);
      }
    return s;
  }

  void factorise() {
    factorise(free_);
    factorise(clamped_);
  }
  void factorise(linear_system& s) const {
    const std::size_t m = s.unknown.size();
    std::vector<double> a(m * m, 0.0);
    for (const auto& e : edges_) {
      const long i = s.pos[e.from], j = s.pos[e.to];
      if (i >= 0) a[std::size_t(i) * m + std::size_t(i)] += e.conductance;
      if (j >= 0) a[std::size_t(j) * m + std::size_t(j)] += e.conductance;
      if (i >= 0 && j >= 0) {
        a[std::size_t(i) * m + std::size_t(j)] -= e.conductance;
        a[std::size_t(j) * m + std::size_t(i)] -= e.conductance;
      }
    }
    for (std::size_t c = 0; c < m; ++c) {
      double d = a[c * m + c];
      for (std::size_t k = 0; k < c; ++k) d -= a[c * m + k] * a[c * m + k];
      if (!(d > 1e-12 * (a[c * m + c] + 1e-300)))
        throw_error("resistor_network: node " + std::to_string(s.unknown[c]) +
                    " is not connected to any held (source, ground or clamped) node; its voltage is undetermined");
      d = std::sqrt(d);
      a[c * m + c] = d;
      for (std::size_t r = c + 1; r < m; ++r) {
        double v = a[r * m + c];
        for (std::size_t k = 0; k < c; ++k) v -= a[r * m + k] * a[c * m + k];
        a[r * m + c] = v / d;
      }
    }
    s.chol = std::move(a);
  }

  void settle(const linear_system& s, const double* vs, const double* vo, std::size_t n, double* v) const {
    const std::size_t m = s.unknown.size();
    std::vector<double> rhs(m);
    for (std::size_t r = 0; r < n; ++r) {
      double* vr = v + r * nodes_;
      std::fill(vr, vr + nodes_, 0.0);
      for (std::size_t i = 0; i < sources_.size(); ++i) vr[sources_[i]] = vs[r * sources_.size() + i];
      if (s.clamp_outputs)
        for (std::size_t o = 0; o < outputs_.size(); ++o) vr[outputs_[o]] = vo[r * outputs_.size() + o];
      // rhs = −L_fs V_s: each edge from an unknown node to a held one contributes k_e V_held.
      std::fill(rhs.begin(), rhs.end(), 0.0);
      for (const auto& e : edges_) {
        const long i = s.pos[e.from], j = s.pos[e.to];
        if (i >= 0 && j < 0) rhs[std::size_t(i)] += e.conductance * vr[e.to];
        if (j >= 0 && i < 0) rhs[std::size_t(j)] += e.conductance * vr[e.from];
      }
      solve(s, rhs);
      for (std::size_t c = 0; c < m; ++c) vr[s.unknown[c]] = rhs[c];
    }
  }

  // Solves L_uu z = rhs in place with the system's Cholesky factor G (L_uu = G Gᵀ).
  static void solve(const linear_system& s, std::vector<double>& rhs) {
    const std::size_t m = s.unknown.size();
    for (std::size_t c = 0; c < m; ++c) {
      double x = rhs[c];
      for (std::size_t k = 0; k < c; ++k) x -= s.chol[c * m + k] * rhs[k];
      rhs[c] = x / s.chol[c * m + c];
    }
    for (std::size_t c = m; c-- > 0;) {
      double x = rhs[c];
      for (std::size_t k = c + 1; k < m; ++k) x -= s.chol[k * m + c] * rhs[k];
      rhs[c] = x / s.chol[c * m + c];
    }
  }

  std::size_t nodes_ = 0;
  std::vector<edge> edges_{};
  std::vector<std::size_t> sources_{}, outputs_{}, ground_{};
  params params_{};
  linear_system free_{}, clamped_{};
};

}  // namespace pnn::physics
