// petune-ext's collectives for data-parallel training (issue #17): c10d's own
// ProcessGroupGloo (the backend torch.distributed uses on CPU), rendezvousing through a
// c10d::TCPStore hosted by rank 0, as torch.distributed's env:// init does.
//
// Why this file exists: tch has no distributed bindings. The wheel exports
// ProcessGroupGloo from libtorch_cpu but ships no gloo headers; `gloo-abi/` declares the
// few gloo names ProcessGroupGloo.hpp needs (it uses gloo types only behind pointers; see
// gloo-abi/README.md), and the static_assert below pins the class size that libtorch
// itself allocates.
//
// Every collective is bounded: Gloo fails a send/recv after the group's timeout, and a
// peer whose connection dropped (it died) is an error at once. Before each collective the
// ranks compare the tensor's shape and dtype with one tiny MAX all-reduce, so a mismatch
// is an error on every rank instead of a wrong sum or a stalled ring.
#include <ATen/core/Tensor.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/tensor.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "petune_guard.hpp"

using petune::guarded;

#if TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR == 13
// libtorch 2.13's own allocation of the class (see gloo-abi/README.md): if the declarations
// in gloo-abi/ ever changed its layout, this stops the build instead of corrupting memory.
static_assert(sizeof(c10d::ProcessGroupGloo) == 488, "ProcessGroupGloo layout differs from libtorch's");
#endif

namespace {

// One rank's membership: the store it rendezvoused on and the Gloo group built on it.
struct Group {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
  int64_t rank;
  int64_t world;
  std::chrono::milliseconds timeout;
};

Group* group_of(void* handle) {
  TORCH_CHECK(handle != nullptr, "null process group");
  return static_cast<Group*>(handle);
}

// A CPU, contiguous, defined tensor: what Gloo reduces in place.
at::Tensor& checked(at::Tensor* t, const char* what) {
  TORCH_CHECK(t != nullptr && t->defined(), what, ": undefined tensor");
  TORCH_CHECK(t->device().is_cpu(), what, ": the tensor must be on the CPU, not ", t->device());
  TORCH_CHECK(t->is_contiguous(), what, ": the tensor must be contiguous");
  return *t;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// The address Gloo's pairs listen on, chosen as torch.distributed chooses it:
// GLOO_SOCKET_IFNAME (comma-separated interfaces) if set; the loopback when the master is
// on this machine's loopback (local ranks); else this host's resolved name.
std::vector<std::shared_ptr<::gloo::transport::Device>> devices_for(const std::string& master) {
  std::vector<std::shared_ptr<::gloo::transport::Device>> out;
  const char* ifnames = std::getenv("GLOO_SOCKET_IFNAME");
  if (ifnames != nullptr && ifnames[0] != '\0') {
    std::stringstream list(ifnames);
    std::string name;
    while (std::getline(list, name, ',')) {
      if (!name.empty()) out.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
    }
    TORCH_CHECK(!out.empty(), "GLOO_SOCKET_IFNAME names no interface");
  } else if (is_loopback(master)) {
    out.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    out.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  return out;
}

void wait(const c10::intrusive_ptr<c10d::Work>& work, const Group& g) {
  work->wait(g.timeout);
}

// Every rank must pass a tensor of the same dtype and shape: one MAX all-reduce of
// [meta, -meta] gives every rank the largest and the smallest of each field, so all of
// them see a mismatch (and fail) together.
void same_everywhere(Group& g, const at::Tensor& t, const char* what) {
  if (g.world == 1) return;
  std::vector<int64_t> meta{static_cast<int64_t>(t.scalar_type()), t.dim()};
  for (auto s : t.sizes()) meta.push_back(s);
  // Pad to a fixed length so tensors of different ranks' dims still reduce.
  constexpr size_t kFields = 2 + 8;
  TORCH_CHECK(meta.size() <= kFields, what, ": tensors of more than 8 dims are not supported");
  meta.resize(kFields, -1);
  auto local = at::tensor(meta, at::kLong);
  std::vector<at::Tensor> both{at::cat({local, local.neg()})};
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::MAX;
  wait(g.gloo->allreduce(both, opts), g);
  auto hi = both[0].slice(0, 0, kFields);
  auto lo = both[0].slice(0, kFields).neg();
  TORCH_CHECK(at::equal(hi, lo), what, ": the ranks passed tensors of different dtype or shape ",
              "(this rank: ", t.scalar_type(), " ", t.sizes(), "); every rank must pass the same");
}

}  // namespace

extern "C" {

// Joins (rank 0: hosts) the TCPStore at host:port, waits at most `timeout_ms` for all
// `world` ranks, and connects the Gloo group over it. `*out` receives the group handle.
char* petune_ext_pg_new(const char* host, uint16_t port, int64_t rank, int64_t world,
                        int64_t timeout_ms, void** out) {
  return guarded([&] {
    TORCH_CHECK(out != nullptr, "null output");
    *out = nullptr;
    TORCH_CHECK(host != nullptr && host[0] != '\0', "empty master address");
    TORCH_CHECK(world >= 1, "world size must be at least 1, not ", world);
    TORCH_CHECK(rank >= 0 && rank < world, "rank ", rank, " is not in [0, ", world, ")");
    TORCH_CHECK(timeout_ms > 0, "timeout must be positive, not ", timeout_ms, " ms");
    const std::string master(host);
    const auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions opts;
    opts.port = port;
    opts.isServer = rank == 0;
    opts.numWorkers = static_cast<size_t>(world);
    opts.waitWorkers = true;
    opts.timeout = timeout;
    auto group = std::make_unique<Group>();
    group->store = c10::make_intrusive<c10d::TCPStore>(master, opts);
    auto gloo_opts = c10d::ProcessGroupGloo::Options::create(timeout);
    gloo_opts->devices = devices_for(master);
    // One collective is in flight at a time (each call waits for its work).
    gloo_opts->threads = 1;
    group->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(
        group->store, static_cast<int>(rank), static_cast<int>(world), gloo_opts);
    group->rank = rank;
    group->world = world;
    group->timeout = timeout;
    *out = group.release();
  });
}

// Frees the handle. Rank 0 hosts the store, so it first waits, at most the timeout, until
// every rank has said it is leaving: a rank still connecting or finishing its last
// collective must not find the store gone.
char* petune_ext_pg_destroy(void* handle) {
  std::unique_ptr<Group> g(static_cast<Group*>(handle));
  return guarded([&] {
    if (!g || g->world == 1) return;
    const std::string left = "petune/left";
    auto count = g->store->add(left, 1);
    if (g->rank != 0) return;
    const auto deadline = std::chrono::steady_clock::now() + g->timeout;
    while (count < g->world && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      count = g->store->add(left, 0);
    }
    TORCH_CHECK(count >= g->world, "only ", count, " of ", g->world,
                " ranks left the group cleanly before the timeout");
  });
}

// In-place sum of `tensor` over all ranks (Gloo's ring all-reduce: every rank gets the
// same bits).
char* petune_ext_pg_all_reduce_sum_(void* handle, at::Tensor* tensor) {
  return guarded([&] {
    auto* g = group_of(handle);
    auto& t = checked(tensor, "all_reduce");
    same_everywhere(*g, t, "all_reduce");
    c10::NoGradGuard no_grad;
    std::vector<at::Tensor> ts{t};
    wait(g->gloo->allreduce(ts), *g);
  });
}

// In-place broadcast of rank `root`'s `tensor` to every rank.
char* petune_ext_pg_broadcast_(void* handle, at::Tensor* tensor, int64_t root) {
  return guarded([&] {
    auto* g = group_of(handle);
    auto& t = checked(tensor, "broadcast");
    TORCH_CHECK(root >= 0 && root < g->world, "broadcast: root ", root, " is not in [0, ",
                g->world, ")");
    same_everywhere(*g, t, "broadcast");
    c10::NoGradGuard no_grad;
    std::vector<at::Tensor> ts{t};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    wait(g->gloo->broadcast(ts, opts), *g);
  });
}

// Returns once every rank has called it (or fails after the timeout).
char* petune_ext_pg_barrier(void* handle) {
  return guarded([&] {
    auto* g = group_of(handle);
    wait(g->gloo->barrier(), *g);
  });
}

}  // extern "C"
