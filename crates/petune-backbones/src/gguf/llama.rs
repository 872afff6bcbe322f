//! A `general.architecture = llama` GGUF as a Hugging Face `LlamaForCausalLM`: its metadata as
//! a `config.json`-shaped value, its tensors under HF names in HF layout, checked strictly.
//!
//! Facts followed (llama.cpp's `convert_hf_to_gguf.py`, `TextModel.set_gguf_parameters` and
//! `LlamaModel`,
//! <https://github.com/ggml-org/llama.cpp/blob/0024aa7417efd50a7c2a79e049dfbbbceb0beaaf/convert_hf_to_gguf.py>;
//! names from gguf-py's `TensorNameMap`; transformers 5.24's GGUF loader,
//! `modeling_gguf_pytorch_utils.py`, for the config keys and `LlamaTensorProcessor`):
//!
//! * `llama.block_count` → `num_hidden_layers`, `embedding_length` → `hidden_size`,
//!   `feed_forward_length` → `intermediate_size`, `attention.head_count(_kv)` →
//!   `num_attention_heads` / `num_key_value_heads`, `attention.key_length` (or hidden / heads) →
//!   `head_dim`, `attention.layer_norm_rms_epsilon` → `rms_norm_eps`, `rope.freq_base` →
//!   `rope_theta`, `context_length` → `max_position_embeddings`; the vocabulary size is the length
//!   of `tokenizer.ggml.tokens`; tied embeddings iff there is no `output.weight`.
//! * rope scaling: `rope.scaling.type = linear` with `rope.scaling.factor`; llama3 scaling, which
//!   the converter writes as per-frequency factors in a `rope_freqs.weight` tensor, is recovered
//!   as `factor` / `low_freq_factor` 1 / `high_freq_factor` 4 / `original_max_position_embeddings`
//!   and accepted only when those parameters reproduce the stored factors.
//! * the converter permutes the rows of `q_proj` (with `head_count` heads) and `k_proj` (with
//!   `head_count_kv`) so that each rotary pair `(i, i + d/2)` of a head becomes two adjacent rows:
//!   `w.reshape(n, 2, d/2, …).swapaxes(1, 2)`. Loading undoes it (`reshape(n, d/2, 2, …)
//!   .swapaxes(1, 2)`), on the quantized rows, before dequantizing.
//!
//! Unsupported on purpose (typed errors): other architectures, mixtures of experts
//! (`llama.expert_count`), partial rotary (`rope.dimension_count` ≠ head dim), yarn / longrope.

use std::collections::{BTreeSet, HashMap};

use petune_core::{Error, Result, ShapeMismatch, WeightReport};
use serde_json::{json, Value};
use tch::{Device, Kind, Tensor};

use super::dequant::QuantizedTensor;
use super::file::{naming_file, GgufFile};
use super::tokenizer::SpecialIds;

/// The GGUF tensor holding llama3 rope factors (not a model weight).
const ROPE_FREQS: &str = "rope_freqs.weight";
/// llama3 scaling's band edges, as Llama 3.1 / 3.2 and the converter's defaults have them.
const LLAMA3_LOW_FREQ_FACTOR: f64 = 1.0;
const LLAMA3_HIGH_FREQ_FACTOR: f64 = 4.0;

/// What a GGUF tensor is in the HF model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorMapping {
    /// Name in the GGUF file (`blk.0.attn_q.weight`).
    pub gguf: String,
    /// Hugging Face name (`model.layers.0.self_attn.q_proj.weight`).
    pub hf: String,
    /// Shape in HF (PyTorch) order.
    pub shape: Vec<i64>,
    /// Heads whose rotary row permutation must be undone (Q and K projections).
    pub unpermute_heads: Option<i64>,
}

/// The model hyper-parameters a llama GGUF states.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaGgufConfig {
    /// Decoder layers.
    pub n_layers: i64,
    /// Hidden size.
    pub hidden: i64,
    /// Gated-FFN inner size.
    pub intermediate: i64,
    /// Query heads.
    pub n_heads: i64,
    /// Key/value heads.
    pub n_kv_heads: i64,
    /// Per-head size.
    pub head_dim: i64,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Rotary base.
    pub rope_theta: f64,
    /// HF `rope_scaling`, or `None`.
    pub rope_scaling: Option<Value>,
    /// Context length.
    pub max_positions: i64,
    /// Vocabulary size.
    pub vocab: i64,
    /// LM head tied to the embeddings.
    pub tied: bool,
    /// Q/K/V/O biases.
    pub attention_bias: bool,
    /// Gate/up/down biases.
    pub mlp_bias: bool,
    /// Special ids.
    pub special: SpecialIds,
}

/// A llama GGUF, validated: config, and every tensor's HF name, shape and permutation.
#[derive(Debug, Clone)]
pub struct LlamaGguf {
    /// Hyper-parameters.
    pub config: LlamaGgufConfig,
    /// The model's tensors in HF order (embeddings, layers, final norm, LM head).
    pub tensors: Vec<TensorMapping>,
}

impl LlamaGguf {
    /// Reads the config from `file`'s metadata and checks its tensor table against it: every
    /// missing, unexpected or mis-shaped tensor in one [`Error::Weights`].
    pub fn new(file: &GgufFile) -> Result<LlamaGguf> {
        let meta = file.metadata();
        let path = file.path();
        let arch = meta.str("general.architecture")?;
        if arch != "llama" {
            return Err(Error::Unsupported {
                what: format!("GGUF architecture `{arch}`"),
                msg: format!("{}: petune maps `llama` GGUF files to Hugging Face", path.display()),
            });
        }
        let config = read_config(file)?;
        let tensors = expected_tensors(&config);
        check_tensors(file, &tensors)?;
        Ok(LlamaGguf { config, tensors })
    }

    /// The config as a Hugging Face `LlamaConfig` `config.json`.
    pub fn hf_config(&self) -> Value {
        let c = &self.config;
        json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": c.hidden,
            "intermediate_size": c.intermediate,
            "num_hidden_layers": c.n_layers,
            "num_attention_heads": c.n_heads,
            "num_key_value_heads": c.n_kv_heads,
            "head_dim": c.head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": c.rms_norm_eps,
            "rope_theta": c.rope_theta,
            "rope_scaling": c.rope_scaling,
            "max_position_embeddings": c.max_positions,
            "vocab_size": c.vocab,
            "tie_word_embeddings": c.tied,
            "attention_bias": c.attention_bias,
            "mlp_bias": c.mlp_bias,
            "attention_dropout": 0.0,
            "bos_token_id": c.special.bos,
            "eos_token_id": c.special.eos,
            "pad_token_id": c.special.pad,
            "torch_dtype": "float32",
        })
    }

    /// Tensor `hf` (an HF name) as raw blocks in HF layout (Q/K rows un-permuted), on the CPU.
    pub fn quantized(&self, file: &GgufFile, hf: &str) -> Result<QuantizedTensor> {
        let m = self.tensors.iter().find(|m| m.hf == hf).ok_or_else(|| Error::Gguf {
            path: file.path().to_path_buf(),
            msg: format!("the model has no tensor `{hf}`"),
        })?;
        let q = file.quantized(&m.gguf)?;
        let q = match m.unpermute_heads {
            Some(heads) => q.permute_rows(&unpermute_index(m.shape[0], heads)?)?,
            None => q,
        };
        Ok(q.renamed(hf))
    }

    /// Every tensor, dequantized to float32 in HF layout, under HF names.
    pub fn dequantized(&self, file: &GgufFile) -> Result<Vec<(String, Tensor)>> {
        self.tensors
            .iter()
            .map(|m| {
                let t = self
                    .quantized(file, &m.hf)?
                    .dequantize()
                    .map_err(|e| naming_file(e, file.path()))?;
                Ok((m.hf.clone(), t))
            })
            .collect()
    }
}

/// For HF row `r`, the GGUF row it was moved to: the inverse of the converter's permutation.
///
/// # Shapes
/// `[rows]` int64, `rows = heads · head_dim`.
pub fn unpermute_index(rows: i64, heads: i64) -> Result<Tensor> {
    if heads <= 0 || rows % (2 * heads) != 0 {
        return Err(Error::input(format!("{rows} rows cannot be {heads} rotary heads")));
    }
    // HF row (h, half, i) sits at GGUF row (h, i, half).
    Ok(Tensor::f_arange(rows, (Kind::Int64, Device::Cpu))?
        .f_reshape([heads, rows / heads / 2, 2])? // [heads, d/2, 2] in GGUF order
        .f_transpose(1, 2)? // [heads, 2, d/2]: HF order
        .f_reshape([rows])?)
}

fn read_config(file: &GgufFile) -> Result<LlamaGgufConfig> {
    let meta = file.metadata();
    let path = file.path();
    let bad = |msg: String| Error::Gguf { path: path.to_path_buf(), msg };
    let key = |name: &str| format!("llama.{name}");
    let positive = |name: &str, v: u64| -> Result<i64> {
        if v == 0 || v > i32::MAX as u64 {
            return Err(bad(format!("`{}` is {v}", key(name))));
        }
        Ok(v as i64)
    };
    let int = |name: &str| -> Result<i64> { positive(name, meta.u64(&key(name))?) };

    if meta.opt_u64(&key("expert_count"))?.unwrap_or(0) > 0 {
        return Err(Error::Unsupported {
            what: "mixture-of-experts llama GGUF (`llama.expert_count`)".into(),
            msg: format!("{}: petune maps dense llama models only", path.display()),
        });
    }
    let n_layers = int("block_count")?;
    if n_layers as usize > file.tensors().len() {
        return Err(bad(format!(
            "`llama.block_count` is {n_layers}, but the file has only {} tensors",
            file.tensors().len()
        )));
    }
    let hidden = int("embedding_length")?;
    let intermediate = int("feed_forward_length")?;
    let n_heads = int("attention.head_count")?;
    let n_kv_heads = match meta.opt_u64(&key("attention.head_count_kv"))? {
        Some(v) => positive("attention.head_count_kv", v)?,
        None => n_heads,
    };
    if n_heads % n_kv_heads != 0 {
        return Err(bad(format!(
            "{n_heads} attention heads cannot share {n_kv_heads} key/value heads"
        )));
    }
    let head_dim = match meta.opt_u64(&key("attention.key_length"))? {
        Some(v) => positive("attention.key_length", v)?,
        None if hidden % n_heads == 0 => hidden / n_heads,
        None => {
            return Err(bad(format!("hidden size {hidden} is not a multiple of {n_heads} heads")))
        }
    };
    if let Some(v) = meta.opt_u64(&key("attention.value_length"))? {
        if v as i64 != head_dim {
            return Err(Error::Unsupported {
                what: "different key and value head sizes".into(),
                msg: format!("{}: key {head_dim}, value {v}", path.display()),
            });
        }
    }
    if head_dim % 2 != 0 {
        return Err(bad(format!("head size {head_dim} is odd: rotary pairs need an even size")));
    }
    if let Some(rot) = meta.opt_u64(&key("rope.dimension_count"))? {
        if rot as i64 != head_dim {
            return Err(Error::Unsupported {
                what: "partial rotary embeddings".into(),
                msg: format!(
                    "{}: `llama.rope.dimension_count` {rot} ≠ head size {head_dim}",
                    path.display()
                ),
            });
        }
    }
    let rms_norm_eps = meta.f64(&key("attention.layer_norm_rms_epsilon"))?;
    let rope_theta = meta.opt_f64(&key("rope.freq_base"))?.unwrap_or(10_000.0);
    if !(rms_norm_eps.is_finite()
        && rms_norm_eps > 0.0
        && rope_theta.is_finite()
        && rope_theta > 1.0)
    {
        return Err(bad(format!(
            "rms_norm_eps {rms_norm_eps} / rope_theta {rope_theta} out of range"
        )));
    }
    let max_positions = int("context_length")?;
    let tokens =
        meta.get("tokenizer.ggml.tokens").and_then(|v| v.as_array()).map(<[_]>::len).ok_or_else(
            || bad("no `tokenizer.ggml.tokens`: the vocabulary size is unknown".into()),
        )?;
    if let Some(v) = meta.opt_u64(&key("vocab_size"))? {
        if v as usize != tokens {
            return Err(bad(format!("`llama.vocab_size` is {v} but there are {tokens} tokens")));
        }
    }
    let vocab = positive("vocab_size", tokens as u64)?;
    let has = |name: &str| file.tensor(name).is_some();
    let rope_scaling = rope_scaling(file, head_dim, rope_theta)?;
    Ok(LlamaGgufConfig {
        n_layers,
        hidden,
        intermediate,
        n_heads,
        n_kv_heads,
        head_dim,
        rms_norm_eps,
        rope_theta,
        rope_scaling,
        max_positions,
        vocab,
        tied: !has("output.weight"),
        attention_bias: has("blk.0.attn_q.bias"),
        mlp_bias: has("blk.0.ffn_gate.bias"),
        special: SpecialIds::read(meta, path, tokens)?,
    })
}

/// HF `rope_scaling` from `llama.rope.scaling.*` or the llama3 `rope_freqs` factors.
fn rope_scaling(file: &GgufFile, head_dim: i64, theta: f64) -> Result<Option<Value>> {
    let meta = file.metadata();
    let path = file.path();
    let unsupported = |what: String, msg: String| Error::Unsupported {
        what,
        msg: format!("{}: {msg}", path.display()),
    };
    let from_keys = match meta.opt_str("llama.rope.scaling.type")? {
        None | Some("none") => match meta.opt_f64("llama.rope.scale_linear")? {
            Some(f) if f != 1.0 => Some(json!({"rope_type": "linear", "factor": f})),
            _ => None,
        },
        Some("linear") => {
            Some(json!({"rope_type": "linear", "factor": meta.f64("llama.rope.scaling.factor")?}))
        }
        Some(other) => {
            return Err(unsupported(
                format!("rope scaling `{other}`"),
                "petune maps linear and llama3 scaling".into(),
            ))
        }
    };
    let Some(info) = file.tensor(ROPE_FREQS) else { return Ok(from_keys) };
    if from_keys.is_some() {
        return Err(unsupported(
            "two rope scalings".into(),
            format!("`llama.rope.scaling.*` and a `{ROPE_FREQS}` tensor"),
        ));
    }
    if info.shape() != [head_dim / 2] {
        return Err(Error::Weights {
            path: path.to_path_buf(),
            report: WeightReport {
                mismatched: vec![ShapeMismatch {
                    key: ROPE_FREQS.into(),
                    expected: vec![head_dim / 2],
                    found: info.shape(),
                }],
                ..Default::default()
            },
        });
    }
    let factors = Vec::<f64>::try_from(file.dequantize(ROPE_FREQS)?.f_to_kind(Kind::Double)?)?;
    let original = meta.opt_u64("llama.rope.scaling.original_context_length")?.map(|v| v as f64);
    llama3_scaling(&factors, head_dim, theta, original).map_err(|msg| {
        unsupported(
            format!("`{ROPE_FREQS}` rope factors"),
            format!("{msg}; petune recovers llama3 scaling only"),
        )
    })
}

/// The rotary wavelengths `2π / θ^(−2i/d)`, `i < d/2`.
fn wavelengths(head_dim: i64, theta: f64) -> Vec<f64> {
    (0..head_dim / 2)
        .map(|i| 2.0 * std::f64::consts::PI * theta.powf(2.0 * i as f64 / head_dim as f64))
        .collect()
}

/// The factor llama3 scaling applies at wavelength `wl` (transformers' `_compute_llama3_parameters`).
fn llama3_factor(wl: f64, factor: f64, original: f64) -> f64 {
    let (low, high) = (original / LLAMA3_LOW_FREQ_FACTOR, original / LLAMA3_HIGH_FREQ_FACTOR);
    if wl < high {
        1.0
    } else if wl > low {
        factor
    } else {
        let smooth = (original / wl - LLAMA3_LOW_FREQ_FACTOR)
            / (LLAMA3_HIGH_FREQ_FACTOR - LLAMA3_LOW_FREQ_FACTOR);
        1.0 / ((1.0 - smooth) / factor + smooth)
    }
}

/// Recovers llama3 `rope_scaling` from the per-frequency factors, or says why it cannot.
fn llama3_scaling(
    factors: &[f64],
    head_dim: i64,
    theta: f64,
    original: Option<f64>,
) -> std::result::Result<Option<Value>, String> {
    let wl = wavelengths(head_dim, theta);
    if factors.iter().all(|&f| f == 1.0) {
        return Ok(None);
    }
    let factor = factors.iter().copied().fold(f64::MIN, f64::max);
    if !(factor.is_finite() && factor > 1.0) {
        return Err(format!("the largest factor is {factor}"));
    }
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-4 * a.abs().max(1.0);
    let original = match original {
        Some(l) => l,
        None => {
            // A factor inside the smooth band fixes the original context: L = (3s + 1)·wl.
            let band = factors.iter().zip(&wl).find(|(&f, _)| !close(f, 1.0) && !close(f, factor));
            match band {
                Some((&f, &w)) => {
                    let smooth = (1.0 / f - 1.0 / factor) / (1.0 - 1.0 / factor);
                    ((LLAMA3_HIGH_FREQ_FACTOR - LLAMA3_LOW_FREQ_FACTOR) * smooth
                        + LLAMA3_LOW_FREQ_FACTOR)
                        * w
                }
                // No factor in the band: any context between the edges gives these factors.
                None => {
                    let ones =
                        wl.iter().zip(factors).filter(|(_, &f)| close(f, 1.0)).map(|(&w, _)| w);
                    LLAMA3_HIGH_FREQ_FACTOR * ones.fold(0.0, f64::max) + 1.0
                }
            }
            .round()
        }
    };
    for (i, (&f, &w)) in factors.iter().zip(&wl).enumerate() {
        let want = llama3_factor(w, factor, original);
        if !close(f, want) {
            return Err(format!(
                "factor {i} is {f}, llama3 scaling (factor {factor}, original context {original}) gives {want}"
            ));
        }
    }
    Ok(Some(json!({
        "rope_type": "llama3",
        "factor": factor,
        "low_freq_factor": LLAMA3_LOW_FREQ_FACTOR,
        "high_freq_factor": LLAMA3_HIGH_FREQ_FACTOR,
        "original_max_position_embeddings": original as i64,
    })))
}

/// Every tensor the config implies, in HF order.
fn expected_tensors(c: &LlamaGgufConfig) -> Vec<TensorMapping> {
    let map = |gguf: String, hf: String, shape: Vec<i64>, unpermute_heads: Option<i64>| {
        TensorMapping { gguf, hf, shape, unpermute_heads }
    };
    let (d, q, kv, ffn) =
        (c.hidden, c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim, c.intermediate);
    let mut out = vec![map(
        "token_embd.weight".into(),
        "model.embed_tokens.weight".into(),
        vec![c.vocab, d],
        None,
    )];
    for l in 0..c.n_layers {
        let g = |s: &str| format!("blk.{l}.{s}");
        let h = |s: &str| format!("model.layers.{l}.{s}");
        out.push(map(g("attn_norm.weight"), h("input_layernorm.weight"), vec![d], None));
        // (gguf, hf, out features, in features, heads to un-permute)
        let linears = [
            ("attn_q", "self_attn.q_proj", q, d, Some(c.n_heads), c.attention_bias),
            ("attn_k", "self_attn.k_proj", kv, d, Some(c.n_kv_heads), c.attention_bias),
            ("attn_v", "self_attn.v_proj", kv, d, None, c.attention_bias),
            ("attn_output", "self_attn.o_proj", d, q, None, c.attention_bias),
            ("ffn_gate", "mlp.gate_proj", ffn, d, None, c.mlp_bias),
            ("ffn_up", "mlp.up_proj", ffn, d, None, c.mlp_bias),
            ("ffn_down", "mlp.down_proj", d, ffn, None, c.mlp_bias),
        ];
        for (gg, hf, n_out, n_in, heads, bias) in linears {
            out.push(map(
                g(&format!("{gg}.weight")),
                h(&format!("{hf}.weight")),
                vec![n_out, n_in],
                heads,
            ));
            if bias {
                out.push(map(
                    g(&format!("{gg}.bias")),
                    h(&format!("{hf}.bias")),
                    vec![n_out],
                    heads,
                ));
            }
        }
        out.push(map(g("ffn_norm.weight"), h("post_attention_layernorm.weight"), vec![d], None));
    }
    out.push(map("output_norm.weight".into(), "model.norm.weight".into(), vec![d], None));
    if !c.tied {
        out.push(map("output.weight".into(), "lm_head.weight".into(), vec![c.vocab, d], None));
    }
    out
}

/// Every expected tensor present with its shape, nothing else (but the rope factors, which
/// [`read_config`] has read into the config).
fn check_tensors(file: &GgufFile, expected: &[TensorMapping]) -> Result<()> {
    let mut report = WeightReport::default();
    let wanted: HashMap<&str, &TensorMapping> =
        expected.iter().map(|m| (m.gguf.as_str(), m)).collect();
    for m in expected {
        match file.tensor(&m.gguf) {
            None => report.missing.push(m.gguf.clone()),
            Some(info) if info.shape() != m.shape => report.mismatched.push(ShapeMismatch {
                key: m.gguf.clone(),
                expected: m.shape.clone(),
                found: info.shape(),
            }),
            Some(_) => {}
        }
    }
    let mut unexpected: BTreeSet<String> = BTreeSet::new();
    for t in file.tensors() {
        if !wanted.contains_key(t.name.as_str()) && t.name != ROPE_FREQS {
            unexpected.insert(t.name.clone());
        }
    }
    report.unexpected = unexpected.into_iter().collect();
    if report.is_clean() {
        Ok(())
    } else {
        Err(Error::Weights { path: file.path().to_path_buf(), report })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_the_converters_permutation() {
        // The converter: w.reshape(n, 2, d/2, cols).swapaxes(1, 2).reshape(rows, cols)
        let (heads, rows) = (3, 12);
        let hf = Tensor::arange(rows, (Kind::Int64, Device::Cpu));
        let gguf = hf.reshape([heads, 2, rows / heads / 2]).transpose(1, 2).reshape([rows]);
        let back = gguf.index_select(0, &unpermute_index(rows, heads).unwrap());
        assert!(back.equal(&hf));
        assert!(unpermute_index(10, 3).is_err());
    }

    #[test]
    fn llama3_factors_round_trip_and_others_are_refused() {
        let (d, theta) = (128, 500_000.0);
        let wl = wavelengths(d, theta);
        let factors: Vec<f64> = wl.iter().map(|&w| llama3_factor(w, 8.0, 8192.0)).collect();
        let got = llama3_scaling(&factors, d, theta, None).unwrap().unwrap();
        assert_eq!(got["factor"], 8.0);
        assert_eq!(got["original_max_position_embeddings"], 8192);
        let mut off = factors.clone();
        off[d as usize / 2 - 1] = 3.0;
        assert!(llama3_scaling(&off, d, theta, None).is_err());
        assert_eq!(llama3_scaling(&vec![1.0; 64], d, theta, None).unwrap(), None);
    }
}
