// petune-ext's collectives for data-parallel training (issue #17): a c10d::TCPStore
// rendezvous (the server on rank 0, as torch.distributed's env:// init) and sum
// all-reduce, broadcast and barrier over that store.
//
// Why not ProcessGroupGloo: the torch wheel exports its symbols from libtorch_cpu but
// ships no gloo headers, and ProcessGroupGloo.hpp includes <gloo/context.h> & co., so the
// class cannot be declared here. TCPStore.hpp needs only c10d's own headers. The tensors
// travel through the store (each rank sets its bytes under a per-collective key, every
// rank reads all of them), which is right for the small gradients of prompt / LoRA
// tuning and slow for full model tuning of large backbones.
//
// Every rank sums the contributions in rank order, so the result is bit-identical on all
// ranks. Every wait is bounded by the group's timeout: a peer that died or hangs is a
// c10d::DistStoreError (a c10::Error) after the timeout, never a hang.
#include <ATen/core/Tensor.h>
#include <ATen/ops/from_blob.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "petune_guard.hpp"

using petune::guarded;

namespace {

// One rank's view of the group. `seq` numbers the collectives, which every rank calls
// in the same order, so the keys of one never meet those of another.
struct Group {
  c10::intrusive_ptr<c10d::TCPStore> store;
  int64_t rank;
  int64_t world;
  std::chrono::milliseconds timeout;
  uint64_t seq = 0;

  std::string key(uint64_t op, int64_t r) const {
    return "petune/" + std::to_string(op) + "/" + std::to_string(r);
  }

  std::vector<std::string> keys(uint64_t op) const {
    std::vector<std::string> out;
    for (int64_t r = 0; r < world; ++r) out.push_back(key(op, r));
    return out;
  }

  // Every rank's payload for collective `op` once all are there (bounded wait).
  std::vector<std::vector<uint8_t>> gather(uint64_t op) {
    auto ks = keys(op);
    store->wait(ks, timeout);
    return store->multiGet(ks);
  }

  // The last rank to finish reading collective `op` deletes its keys, so the server's
  // memory does not grow with the number of steps.
  void done(uint64_t op) {
    const auto count = store->add("petune/" + std::to_string(op) + "/read", 1);
    if (count == world) {
      for (const auto& k : keys(op)) store->deleteKey(k);
      store->deleteKey("petune/" + std::to_string(op) + "/read");
    }
  }
};

Group* group_of(void* handle) {
  TORCH_CHECK(handle != nullptr, "null process group");
  return static_cast<Group*>(handle);
}

// A CPU, contiguous, defined tensor: the only kind whose bytes the store can carry as is.
const at::Tensor& checked(const at::Tensor* t, const char* what) {
  TORCH_CHECK(t != nullptr && t->defined(), what, ": undefined tensor");
  TORCH_CHECK(t->device().is_cpu(), what, ": the tensor must be on the CPU, not ", t->device());
  TORCH_CHECK(t->is_contiguous(), what, ": the tensor must be contiguous");
  return *t;
}

std::vector<uint8_t> bytes_of(const at::Tensor& t) {
  const auto n = t.numel() * static_cast<int64_t>(t.element_size());
  const auto* p = static_cast<const uint8_t*>(t.const_data_ptr());
  return std::vector<uint8_t>(p, p + n);
}

}  // namespace

extern "C" {

// Joins (rank 0: hosts) the TCPStore at host:port and waits, at most `timeout_ms`, for all
// `world` ranks to connect. `*out` receives the group handle.
char* petune_ext_pg_new(const char* host, uint16_t port, int64_t rank, int64_t world,
                        int64_t timeout_ms, void** out) {
  return guarded([&] {
    TORCH_CHECK(out != nullptr, "null output");
    *out = nullptr;
    TORCH_CHECK(host != nullptr && host[0] != '\0', "empty master address");
    TORCH_CHECK(world >= 1, "world size must be at least 1, not ", world);
    TORCH_CHECK(rank >= 0 && rank < world, "rank ", rank, " is not in [0, ", world, ")");
    TORCH_CHECK(timeout_ms > 0, "timeout must be positive, not ", timeout_ms, " ms");
    c10d::TCPStoreOptions opts;
    opts.port = port;
    opts.isServer = rank == 0;
    opts.numWorkers = static_cast<size_t>(world);
    opts.waitWorkers = true;
    opts.timeout = std::chrono::milliseconds(timeout_ms);
    auto group = std::make_unique<Group>();
    group->store = c10::make_intrusive<c10d::TCPStore>(std::string(host), opts);
    group->rank = rank;
    group->world = world;
    group->timeout = std::chrono::milliseconds(timeout_ms);
    *out = group.release();
  });
}

// Frees the handle (closes this rank's connection). Rank 0 hosts the store, so it first
// waits, at most the timeout, until every rank has said it is leaving: otherwise a rank
// still reading the last collective's keys would find the server gone.
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

// In-place sum of `tensor` over all ranks (same dtype and shape everywhere). Floating
// tensors are summed in rank order in their own dtype.
char* petune_ext_pg_all_reduce_sum_(void* handle, at::Tensor* tensor) {
  return guarded([&] {
    auto* g = group_of(handle);
    const auto& t = checked(tensor, "all_reduce");
    const auto op = g->seq++;
    g->store->set(g->key(op, g->rank), bytes_of(t));
    auto all = g->gather(op);
    const auto expected = t.numel() * static_cast<int64_t>(t.element_size());
    c10::NoGradGuard no_grad;
    at::Tensor sum;
    for (int64_t r = 0; r < g->world; ++r) {
      TORCH_CHECK(static_cast<int64_t>(all[r].size()) == expected, "all_reduce: rank ", r,
                  " sent ", all[r].size(), " bytes where this rank has ", expected,
                  " (every rank must pass the same shape and dtype)");
      auto part = at::from_blob(all[r].data(), t.sizes(), t.options());
      if (r == 0) {
        sum = part.clone();
      } else {
        sum.add_(part);
      }
    }
    g->done(op);
    tensor->copy_(sum);
  });
}

// In-place broadcast of rank `root`'s `tensor` to every rank.
char* petune_ext_pg_broadcast_(void* handle, at::Tensor* tensor, int64_t root) {
  return guarded([&] {
    auto* g = group_of(handle);
    const auto& t = checked(tensor, "broadcast");
    TORCH_CHECK(root >= 0 && root < g->world, "broadcast: root ", root, " is not in [0, ",
                g->world, ")");
    const auto op = g->seq++;
    // Non-root ranks post an empty payload: it marks them as arrived, so a rank that
    // died is noticed by every other one, root included, after the timeout.
    g->store->set(g->key(op, g->rank), g->rank == root ? bytes_of(t) : std::vector<uint8_t>{});
    auto all = g->gather(op);
    const auto expected = t.numel() * static_cast<int64_t>(t.element_size());
    TORCH_CHECK(static_cast<int64_t>(all[root].size()) == expected, "broadcast: root ", root,
                " sent ", all[root].size(), " bytes where this rank has ", expected);
    if (g->rank != root) {
      c10::NoGradGuard no_grad;
      tensor->copy_(at::from_blob(all[root].data(), t.sizes(), t.options()));
    }
    g->done(op);
  });
}

// Returns once every rank has called it (or fails after the timeout).
char* petune_ext_pg_barrier(void* handle) {
  return guarded([&] {
    auto* g = group_of(handle);
    const auto op = g->seq++;
    g->store->set(g->key(op, g->rank), std::vector<uint8_t>{});
    g->gather(op);
    g->done(op);
  });
}

}  // extern "C"
