//! GGUF: the reader (every metadata type, alignment, strict errors, truncation and byte-flip
//! fuzzing), dequantization bit-identical to gguf-py, the metadata tokenizer against transformers,
//! and a converted tiny Llama mapped back to its Hugging Face tensors.
//!
//! Fixtures: tests/fixtures/gguf/ (scripts/export_gguf_fixtures.py; provenance in its README).
//! The real SmolLM2 checks are in tests/gguf_real.rs (`#[ignore]`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::*;
use petune::backbones::gguf::{
    gguf_tokenizer, is_gguf_path, resolve_gguf_path, GgmlType, GgufFile, GgufModel, LlamaGguf,
    MetadataValue, ValueType,
};
use petune::prelude::*;
use serde_json::Value;
use tch::{Kind, Tensor};

fn gguf_fixture(name: &str) -> PathBuf {
    fixture("gguf").join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(gguf_fixture(name)).unwrap()
}

fn json_file(name: &str) -> Value {
    serde_json::from_slice(&read(name)).unwrap()
}

fn bits(t: &Tensor) -> Tensor {
    t.contiguous().view_dtype(Kind::Int)
}

// ------------------------------------------------------------------ a GGUF writer for crafted files

/// A GGUF file assembled in the test: metadata values and tensors with their raw bytes.
#[derive(Clone)]
struct Builder {
    version: u32,
    alignment: u64,
    kv: Vec<(String, MetadataValue)>,
    tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
}

impl Builder {
    fn new() -> Self {
        Builder { version: 3, alignment: 32, kv: Vec::new(), tensors: Vec::new() }
    }

    fn from_file(f: &GgufFile) -> Self {
        let mut b = Builder::new();
        b.version = f.version();
        b.alignment = f.alignment();
        b.kv = f.metadata().iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        for t in f.tensors() {
            b.tensors.push((
                t.name.clone(),
                t.dims.clone(),
                t.ggml_type.id(),
                f.tensor_bytes(&t.name).unwrap().to_vec(),
            ));
        }
        b
    }

    fn set(mut self, key: &str, v: MetadataValue) -> Self {
        self.kv.retain(|(k, _)| k != key);
        self.kv.push((key.into(), v));
        self
    }

    fn without_key(mut self, key: &str) -> Self {
        self.kv.retain(|(k, _)| k != key);
        self
    }

    fn tensor(mut self, name: &str, dims: &[u64], ty: GgmlType, data: Vec<u8>) -> Self {
        self.tensors.push((name.into(), dims.to_vec(), ty.id(), data));
        self
    }

    fn f32_tensor(self, name: &str, dims: &[u64]) -> Self {
        let n: u64 = dims.iter().product();
        let data = (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect();
        self.tensor(name, dims, GgmlType::F32, data)
    }

    fn without_tensor(mut self, name: &str) -> Self {
        self.tensors.retain(|t| t.0 != name);
        self
    }

    fn put_value(out: &mut Vec<u8>, v: &MetadataValue) {
        use MetadataValue as M;
        match v {
            M::U8(x) => out.push(*x),
            M::I8(x) => out.push(*x as u8),
            M::U16(x) => out.extend(x.to_le_bytes()),
            M::I16(x) => out.extend(x.to_le_bytes()),
            M::U32(x) => out.extend(x.to_le_bytes()),
            M::I32(x) => out.extend(x.to_le_bytes()),
            M::F32(x) => out.extend(x.to_le_bytes()),
            M::Bool(x) => out.push(u8::from(*x)),
            M::String(s) => Self::put_str(out, s),
            M::U64(x) => out.extend(x.to_le_bytes()),
            M::I64(x) => out.extend(x.to_le_bytes()),
            M::F64(x) => out.extend(x.to_le_bytes()),
            M::Array { elem, values } => {
                out.extend(elem.id().to_le_bytes());
                out.extend((values.len() as u64).to_le_bytes());
                for v in values {
                    Self::put_value(out, v);
                }
            }
        }
    }

    fn put_str(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }

    /// The file's bytes; `offsets` overrides tensor data offsets by index.
    fn bytes_with(&self, offsets: &[(usize, u64)]) -> Vec<u8> {
        let a = self.alignment;
        let mut out = b"GGUF".to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.kv.len() as u64).to_le_bytes());
        for (k, v) in &self.kv {
            Self::put_str(&mut out, k);
            out.extend(v.value_type().id().to_le_bytes());
            Self::put_value(&mut out, v);
        }
        let mut offset = 0u64;
        for (i, (name, dims, ty, data)) in self.tensors.iter().enumerate() {
            Self::put_str(&mut out, name);
            out.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(ty.to_le_bytes());
            let at = offsets.iter().find(|(j, _)| *j == i).map_or(offset, |&(_, o)| o);
            out.extend(at.to_le_bytes());
            offset += (data.len() as u64).div_ceil(a) * a;
        }
        out.resize((out.len() as u64).div_ceil(a) as usize * a as usize, 0);
        for (_, _, _, data) in &self.tensors {
            out.extend(data);
            out.resize((out.len() as u64).div_ceil(a) as usize * a as usize, 0);
        }
        out
    }

    fn bytes(&self) -> Vec<u8> {
        self.bytes_with(&[])
    }
}

/// The index just past the first occurrence of `needle`.
fn after(bytes: &[u8], needle: &[u8]) -> usize {
    bytes.windows(needle.len()).position(|w| w == needle).unwrap() + needle.len()
}

fn parse(name: &str, bytes: Vec<u8>) -> Result<GgufFile> {
    GgufFile::parse(name, bytes)
}

fn gguf_err(bytes: Vec<u8>) -> String {
    match parse("crafted.gguf", bytes) {
        Ok(_) => panic!("the crafted file must be refused"),
        Err(e @ Error::Gguf { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("crafted.gguf"), "{msg}");
            msg
        }
        Err(e) => panic!("expected Error::Gguf, got {e:?}"),
    }
}

// ------------------------------------------------------------------ reader

#[test]
fn every_metadata_value_type_reads_as_gguf_py_wrote_it() {
    init();
    let f = GgufFile::open(gguf_fixture("types.gguf")).unwrap();
    assert_eq!((f.version(), f.alignment()), (3, 64));
    let expected = json_file("types.metadata.json");
    let expected = expected.as_object().unwrap();
    assert_eq!(f.metadata().len(), expected.len());
    for (key, want) in expected {
        let v = f.metadata().get(key).unwrap_or_else(|| panic!("`{key}` missing"));
        assert_eq!(v.type_name(), want["type"].as_str().unwrap(), "type of {key}");
        assert_eq!(v.to_json(), want["value"], "value of {key}");
    }
    // the f32 value keeps its f32 bits
    assert_eq!(f.metadata().get("test.f32"), Some(&MetadataValue::F32(0.1)));
    assert_eq!(f.tensors().len(), 11);
    let q = f.tensor("q4_1.cube").unwrap();
    assert_eq!(
        (q.dims.clone(), q.shape(), q.ggml_type),
        (vec![64, 2, 3], vec![3, 2, 64], GgmlType::Q4_1)
    );
    assert_eq!(q.n_bytes, 3 * 2 * 2 * 20);
}

#[test]
fn dequantization_is_bit_identical_to_gguf_py() {
    init();
    let f = GgufFile::open(gguf_fixture("types.gguf")).unwrap();
    let golden = golden(&gguf_fixture("types.golden.safetensors"));
    let mut types = BTreeSet::new();
    for (name, want) in &golden.tensors {
        let got = f.dequantize(name).unwrap();
        assert_eq!(got.size(), want.size(), "{name}");
        assert!(bits(&got).equal(&bits(want)), "{name} differs from gguf.quants.dequantize");
        types.insert(f.tensor(name).unwrap().ggml_type.name());
    }
    assert_eq!(types, GgmlType::SUPPORTED.map(GgmlType::name).into_iter().collect());
    // The raw blocks stay reachable, on any device, and dequantize alike.
    let q = f.quantized("q4_0.matrix").unwrap();
    assert_eq!(q.blocks().size(), [f.tensor("q4_0.matrix").unwrap().n_bytes as i64]);
    assert_eq!(Vec::<u8>::try_from(q.blocks()).unwrap(), f.tensor_bytes("q4_0.matrix").unwrap());
    assert!(bits(&q.to_device(tch::Device::Cpu).unwrap().dequantize().unwrap())
        .equal(&bits(&golden.tensors["q4_0.matrix"])));
}

#[test]
fn an_unsupported_tensor_type_is_a_typed_error_naming_it() {
    init();
    let f = GgufFile::open(gguf_fixture("types.gguf")).unwrap();
    match f.dequantize("unsupported.q5_0") {
        Err(Error::Unsupported { what, msg }) => {
            assert!(what.contains("Q5_0"), "{what}");
            assert!(msg.contains("unsupported.q5_0") && msg.contains("types.gguf"), "{msg}");
        }
        other => panic!("expected Error::Unsupported, got {other:?}"),
    }
    assert!(matches!(f.dequantize("no.such.tensor"), Err(Error::Gguf { .. })));
}

#[test]
fn version_2_empty_arrays_and_a_file_without_tensors_parse() {
    init();
    let mut b = Builder::new()
        .set("general.architecture", MetadataValue::String("x".into()))
        .set("empty", MetadataValue::Array { elem: ValueType::String, values: vec![] });
    b.version = 2;
    let f = parse("v2.gguf", b.bytes()).unwrap();
    assert_eq!(f.version(), 2);
    assert_eq!(f.metadata().get("empty").unwrap().to_json(), serde_json::json!([]));
    let f = parse("v2.gguf", b.f32_tensor("t", &[3, 2]).bytes()).unwrap();
    let t = f.dequantize("t").unwrap();
    assert_eq!(t.size(), [2, 3]);
    assert_eq!(Vec::<f32>::try_from(t.view([-1])).unwrap(), [0., 1., 2., 3., 4., 5.]);
}

#[test]
fn corrupt_headers_are_typed_errors_that_say_what_is_wrong() {
    init();
    let base = Builder::new().set("general.architecture", MetadataValue::String("x".into()));
    let good = base.clone().f32_tensor("a", &[8]).f32_tensor("b", &[8]);
    assert!(parse("ok.gguf", good.bytes()).is_ok());

    let mut bad = good.bytes();
    bad[0] = b'X';
    assert!(gguf_err(bad).contains("magic"));
    for (version, what) in
        [(1u32, "version 1"), (7, "unknown GGUF version 7"), (0x0300_0000, "big-endian")]
    {
        let mut b = good.clone();
        b.version = version;
        assert!(gguf_err(b.bytes()).contains(what), "{version}");
    }
    // absurd counts and lengths: refused before any allocation
    let mut bad = good.bytes();
    bad[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(gguf_err(bad).contains("tensor count"));
    let mut bad = good.bytes();
    bad[16..24].copy_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(gguf_err(bad).contains("metadata count"));
    let mut bad = good.bytes();
    bad[24..32].copy_from_slice(&(1u64 << 62).to_le_bytes()); // first key's length
    assert!(gguf_err(bad).contains("length of metadata key #0"));
    let huge = base.clone().set(
        "kbig",
        MetadataValue::Array { elem: ValueType::U64, values: vec![MetadataValue::U64(1)] },
    );
    let mut bad = huge.bytes();
    let at = after(&bad, b"kbig") + 8; // past the type and the element type: the length
    bad[at..at + 8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    assert!(gguf_err(bad).contains("the length of the value of `kbig`"));

    // metadata types and values
    let mut bad = base.clone().set("ktype", MetadataValue::U8(1)).bytes();
    let at = after(&bad, b"ktype");
    bad[at..at + 4].copy_from_slice(&13u32.to_le_bytes());
    assert!(gguf_err(bad).contains("not a GGUF value type"));
    let mut bad = base.clone().set("kbool", MetadataValue::Bool(true)).bytes();
    let at = after(&bad, b"kbool") + 4; // past the type: the value
    bad[at] = 2;
    assert!(gguf_err(bad).contains("not 0 or 1"));
    let dup = Builder {
        kv: vec![("k".into(), MetadataValue::U8(1)), ("k".into(), MetadataValue::U8(2))],
        ..base.clone()
    };
    assert!(gguf_err(dup.bytes()).contains("appears twice"));
    assert!(gguf_err(good.clone().set("general.alignment", MetadataValue::U32(48)).bytes())
        .contains("power of two"));
    assert!(gguf_err(good.clone().set("general.alignment", MetadataValue::U64(64)).bytes())
        .contains("uint32"));

    // tensor table
    assert!(gguf_err(base.clone().f32_tensor("a", &[8]).f32_tensor("a", &[8]).bytes())
        .contains("twice"));
    assert!(gguf_err(base.clone().f32_tensor("a", &[8, 0]).bytes()).contains("zero dimension"));
    assert!(
        gguf_err(base.clone().f32_tensor("a", &[1, 1, 1, 1, 1]).bytes()).contains("5 dimensions")
    );
    let overflow = base.clone().tensor("a", &[1 << 40, 1 << 40], GgmlType::F32, vec![0; 4]);
    assert!(gguf_err(overflow.bytes()).contains("overflow"));
    let odd_row = base.clone().tensor("q", &[48], GgmlType::Q8_0, vec![0; 34]);
    assert!(gguf_err(odd_row.bytes()).contains("not a multiple of the Q8_0 block size 32"));
    let unknown_type =
        Builder { tensors: vec![("a".into(), vec![8], 4, vec![0; 32])], ..base.clone() };
    assert!(gguf_err(unknown_type.bytes()).contains("type id 4"));

    // data section
    assert!(gguf_err(good.bytes_with(&[(1, 16)])).contains("alignment"));
    assert!(gguf_err(good.bytes_with(&[(1, 0)])).contains("overlap"));
    assert!(gguf_err(good.bytes_with(&[(1, 1 << 20)])).contains("past the end"));
    let mut cut = good.bytes();
    cut.truncate(cut.len() - 8);
    assert!(gguf_err(cut).contains("`b`"));
}

/// Parsing a prefix or a flipped copy never panics; whatever parses also dequantizes.
fn parse_and_use(name: &str, bytes: Vec<u8>) {
    if let Ok(f) = parse(name, bytes) {
        for t in f.tensors() {
            if t.ggml_type.is_supported() {
                let _ = f
                    .dequantize(&t.name)
                    .unwrap_or_else(|e| panic!("{name}: `{}` parsed but fails: {e}", t.name));
            }
        }
        // the model path too, when it is a llama: every failure is a typed error
        if f.metadata().opt_str("general.architecture").ok().flatten() == Some("llama") {
            let _ = GgufModel::from_file(f);
        }
    }
}

#[test]
fn truncation_at_every_offset_is_an_error_not_a_panic() {
    init();
    let bytes = read("types.gguf");
    let f = GgufFile::open(gguf_fixture("types.gguf")).unwrap();
    let data_end = f.data_start() + f.tensors().iter().map(|t| t.offset + t.n_bytes).max().unwrap();
    for n in 0..bytes.len() {
        match parse("cut.gguf", bytes[..n].to_vec()) {
            // only the padding after the last tensor may go
            Ok(_) => assert!(n as u64 >= data_end, "cut at {n} parsed"),
            Err(e) => {
                assert!(n as u64 <= data_end, "cut at {n}: {e}");
                assert!(
                    matches!(e, Error::Gguf { .. }) && e.to_string().contains("cut.gguf"),
                    "{e}"
                );
            }
        }
    }
    // the tiny llama, at a stride (its header holds a vocabulary and a chat template)
    let bytes = read("tiny-llama.gguf");
    for n in (0..bytes.len()).step_by(37) {
        assert!(parse("cut.gguf", bytes[..n].to_vec()).is_err(), "cut at {n} of {}", bytes.len());
    }
}

#[test]
fn flipped_bytes_give_errors_or_valid_files_never_panics() {
    init();
    let bytes = read("types.gguf");
    let f = GgufFile::open(gguf_fixture("types.gguf")).unwrap();
    let data_start = f.data_start() as usize;
    // every byte of the header and tensor table, three ways; a stride through the data
    let positions = (0..data_start).chain((data_start..bytes.len()).step_by(13));
    let flips: [fn(u8) -> u8; 3] = [|b| b ^ 0xff, |_| 0, |b| b.wrapping_add(1)];
    for at in positions {
        for flip in flips {
            let mut copy = bytes.clone();
            copy[at] = flip(copy[at]);
            parse_and_use("flipped.gguf", copy);
        }
    }
    let bytes = read("tiny-llama.gguf");
    for at in (0..bytes.len()).step_by(211) {
        let mut copy = bytes.clone();
        copy[at] ^= 0xff;
        parse_and_use("flipped.gguf", copy);
    }
}

// ------------------------------------------------------------------ tokenizer

fn golden_ids(file: &str) -> Vec<Vec<i64>> {
    let tokens = json_file("tokens.json");
    serde_json::from_value(tokens["ids"][file].clone()).unwrap()
}

fn sentences() -> Vec<String> {
    serde_json::from_value(json_file("tokens.json")["sentences"].clone()).unwrap()
}

fn ids(tok: &TextTokenizer, text: &str) -> Vec<i64> {
    tok.encode_ids(&TextInput::single(text), 100_000, false).unwrap().0
}

#[test]
fn gguf_tokenizers_give_transformers_ids_under_every_split_rule() {
    init();
    let texts = sentences();
    for file in [
        "tiny-llama.gguf",
        "tok-llama-bpe.gguf",
        "tok-qwen2.gguf",
        "tok-gpt-4o.gguf",
        "tok-gpt2.gguf",
    ] {
        let f = GgufFile::open(gguf_fixture(file)).unwrap();
        let tok = gguf_tokenizer(f.metadata(), f.path()).unwrap();
        for (text, want) in texts.iter().zip(golden_ids(file)) {
            assert_eq!(ids(&tok, text), want, "{file}: {text:?}");
        }
    }
}

#[test]
fn the_gguf_tokenizer_equals_the_tokenizer_json_it_was_converted_from() {
    init();
    let f = GgufFile::open(gguf_fixture("tiny-llama.gguf")).unwrap();
    let from_gguf = gguf_tokenizer(f.metadata(), f.path()).unwrap();
    let from_json =
        TextTokenizer::from_file(&gguf_fixture("tiny-llama/tokenizer.json"), 2).unwrap();
    for text in sentences() {
        assert_eq!(ids(&from_gguf, &text), ids(&from_json, &text), "{text:?}");
    }
    assert_eq!(from_gguf.pad_id(), 2);
    assert_eq!(from_gguf.token_id("<|im_start|>"), Some(1));
    assert_eq!(from_gguf.decode(&ids(&from_gguf, "café 🚀")).unwrap(), "café 🚀");
}

#[test]
fn tokenizer_metadata_is_checked() {
    init();
    let f = GgufFile::open(gguf_fixture("tok-gpt2.gguf")).unwrap();
    let b = Builder::from_file(&f).set("tokenizer.ggml.pre", MetadataValue::String("gpt-2".into()));
    let tok = |b: &Builder| {
        let f = parse("tok.gguf", b.bytes()).unwrap();
        gguf_tokenizer(f.metadata(), f.path())
    };
    let plain = tok(&b
        .clone()
        .set("tokenizer.ggml.add_bos_token", MetadataValue::Bool(false))
        .set("tokenizer.ggml.add_eos_token", MetadataValue::Bool(false)))
    .unwrap();
    // add_space_prefix puts a space before the text
    let spaced = tok(&b
        .clone()
        .set("tokenizer.ggml.add_space_prefix", MetadataValue::Bool(true))
        .set("tokenizer.ggml.add_bos_token", MetadataValue::Bool(false))
        .set("tokenizer.ggml.add_eos_token", MetadataValue::Bool(false)))
    .unwrap();
    assert_eq!(ids(&spaced, "the movie"), ids(&plain, " the movie"));
    assert_ne!(ids(&plain, "the movie"), ids(&plain, " the movie"));

    let unsupported = |b: Builder, what: &str| match tok(&b) {
        Err(Error::Unsupported { what: w, .. }) => assert!(w.contains(what), "{w}"),
        other => panic!("expected Unsupported({what}), got {other:?}"),
    };
    unsupported(
        b.clone().set("tokenizer.ggml.model", MetadataValue::String("llama".into())),
        "SentencePiece",
    );
    unsupported(
        b.clone().set("tokenizer.ggml.pre", MetadataValue::String("tekken".into())),
        "tekken",
    );
    unsupported(
        b.clone()
            .set("tokenizer.ggml.pre", MetadataValue::String("smollm".into()))
            .set("tokenizer.ggml.add_space_prefix", MetadataValue::Bool(true)),
        "add_space_prefix",
    );
    let tokenizer_err = |b: Builder, what: &str| match tok(&b) {
        Err(e @ Error::Tokenizer { .. }) => assert!(e.to_string().contains(what), "{e}"),
        other => panic!("expected a tokenizer error ({what}), got {other:?}"),
    };
    tokenizer_err(b.clone().without_key("tokenizer.ggml.merges"), "merges");
    tokenizer_err(
        b.clone().set("tokenizer.ggml.bos_token_id", MetadataValue::U32(1 << 20)),
        "outside the vocabulary",
    );
    let merges = |m: &str| MetadataValue::Array {
        elem: ValueType::String,
        values: vec![MetadataValue::String(m.into())],
    };
    tokenizer_err(b.clone().set("tokenizer.ggml.merges", merges("a b c")), "merge #0");
    tokenizer_err(b.clone().set("tokenizer.ggml.merges", merges("zzzq qqqz")), "BPE");
}

// ------------------------------------------------------------------ tiny llama

#[test]
fn the_tiny_llama_gguf_loads_as_its_hugging_face_model() {
    init();
    let model = GgufModel::open(gguf_fixture("tiny-llama.gguf")).unwrap();

    // config: every field the backbone reads, against the HF config.json
    let hf: Value = serde_json::from_slice(&read("tiny-llama/config.json")).unwrap();
    let c = &model.hf_config;
    for key in [
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "max_position_embeddings",
        "vocab_size",
        "tie_word_embeddings",
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
        "model_type",
        "hidden_act",
        "attention_bias",
        "mlp_bias",
    ] {
        assert_eq!(c[key], hf[key], "{key}");
    }
    assert_eq!(
        c["rms_norm_eps"].as_f64().unwrap() as f32,
        hf["rms_norm_eps"].as_f64().unwrap() as f32
    );
    let rope = &hf["rope_parameters"];
    assert_eq!(c["rope_theta"], rope["rope_theta"]);
    for key in [
        "rope_type",
        "factor",
        "low_freq_factor",
        "high_freq_factor",
        "original_max_position_embeddings",
    ] {
        assert_eq!(c["rope_scaling"][key], rope[key], "rope_scaling.{key}");
    }

    // tensors: lossless ones equal the HF file, quantized ones the reference (un-permuted)
    let hf_tensors = golden(&gguf_fixture("tiny-llama/model.safetensors")).tensors;
    let quantized = golden(&gguf_fixture("tiny-llama.golden.safetensors")).tensors;
    let got: BTreeMap<&str, &Tensor> = model.tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let want_names: BTreeSet<&str> =
        hf_tensors.keys().map(String::as_str).filter(|k| *k != "lm_head.weight").collect();
    assert_eq!(got.keys().copied().collect::<BTreeSet<_>>(), want_names);
    let (mut exact, mut lossy) = (0, 0);
    for (name, t) in &got {
        assert_eq!(t.kind(), Kind::Float, "{name}");
        if let Some(q) = quantized.get(*name) {
            assert!(bits(t).equal(&bits(q)), "{name} differs from the reference dequantization");
            lossy += 1;
        } else {
            let want = hf_tensors[*name].to_kind(Kind::Float);
            assert!(t.equal(&want), "{name} differs from the HF tensor");
            exact += 1;
        }
    }
    assert_eq!((exact, lossy), (11, 9));
    // the permutation really was undone: the GGUF rows of q_proj (F32, lossless) differ from HF's
    let raw = model.file.dequantize("blk.0.attn_q.weight").unwrap();
    let hf_q = hf_tensors["model.layers.0.self_attn.q_proj.weight"].to_kind(Kind::Float);
    assert!(!raw.equal(&hf_q) && got["model.layers.0.self_attn.q_proj.weight"].equal(&hf_q));

    // tokenizer and chat template
    for (text, want) in sentences().iter().zip(golden_ids("tiny-llama.gguf")) {
        assert_eq!(ids(&model.tokenizer, text), want, "{text:?}");
    }
    let template = std::fs::read_to_string(gguf_fixture("tiny-llama/chat_template.jinja")).unwrap();
    assert_eq!(model.chat_template.as_deref(), Some(template.as_str()));

    // the quantized blocks in HF layout, for a frozen base kept quantized
    let q = model.llama.quantized(&model.file, "model.layers.1.self_attn.k_proj.weight").unwrap();
    assert_eq!(
        (q.ggml_type(), q.name()),
        (GgmlType::Q4_1, "model.layers.1.self_attn.k_proj.weight")
    );
    assert!(bits(&q.dequantize().unwrap())
        .equal(&bits(&quantized["model.layers.1.self_attn.k_proj.weight"])));
}

fn tiny_llama() -> Builder {
    Builder::from_file(&GgufFile::open(gguf_fixture("tiny-llama.gguf")).unwrap())
}

fn load(b: &Builder) -> Result<LlamaGguf> {
    LlamaGguf::new(&parse("edited.gguf", b.bytes()).unwrap())
}

#[test]
fn every_missing_unexpected_and_misshaped_tensor_is_reported_at_once() {
    init();
    let b = tiny_llama()
        .without_tensor("blk.1.ffn_up.weight")
        .without_tensor("output_norm.weight")
        .f32_tensor("output_norm.weight", &[16])
        .f32_tensor("blk.7.attn_q.weight", &[32, 32]);
    match load(&b) {
        Err(Error::Weights { path, report }) => {
            assert_eq!(path, Path::new("edited.gguf"));
            assert_eq!(report.missing, ["blk.1.ffn_up.weight"]);
            assert_eq!(report.unexpected, ["blk.7.attn_q.weight"]);
            assert_eq!(report.mismatched.len(), 1);
            assert_eq!(
                (report.mismatched[0].expected.clone(), report.mismatched[0].found.clone()),
                (vec![32], vec![16])
            );
        }
        other => panic!("expected Error::Weights, got {other:?}"),
    }
    // untied: an output.weight makes the head a tensor of its own
    let untied = tiny_llama().f32_tensor("output.weight", &[32, 331]);
    let l = load(&untied).unwrap();
    assert_eq!(l.hf_config()["tie_word_embeddings"], false);
    assert_eq!(l.tensors.last().unwrap().hf, "lm_head.weight");
}

#[test]
fn llama_metadata_is_checked() {
    init();
    let err = |b: Builder| load(&b).unwrap_err().to_string();
    let e = err(tiny_llama().without_key("llama.embedding_length"));
    assert!(e.contains("llama.embedding_length") && e.contains("missing"), "{e}");
    let e = err(tiny_llama().set("llama.block_count", MetadataValue::U32(4_000_000)));
    assert!(e.contains("block_count"), "{e}");
    let e = err(tiny_llama().set("llama.attention.head_count_kv", MetadataValue::U32(3)));
    assert!(e.contains("key/value heads"), "{e}");
    let e = err(tiny_llama().set("llama.rope.dimension_count", MetadataValue::U32(4)));
    assert!(e.contains("partial rotary"), "{e}");
    let e = err(tiny_llama().set("llama.expert_count", MetadataValue::U32(8)));
    assert!(e.contains("mixture-of-experts"), "{e}");
    let e = err(tiny_llama().set("general.architecture", MetadataValue::String("qwen2".into())));
    assert!(e.contains("qwen2"), "{e}");
    let e = err(tiny_llama().set("llama.rope.scaling.type", MetadataValue::String("yarn".into())));
    assert!(e.contains("yarn"), "{e}");
    // rope factors that no llama3 scaling produces
    let f = GgufFile::open(gguf_fixture("tiny-llama.gguf")).unwrap();
    let mut factors = Vec::<f32>::try_from(f.dequantize("rope_freqs.weight").unwrap()).unwrap();
    factors[1] = 2.0;
    let data = factors.iter().flat_map(|x| x.to_le_bytes()).collect();
    let e = err(tiny_llama().without_tensor("rope_freqs.weight").tensor(
        "rope_freqs.weight",
        &[4],
        GgmlType::F32,
        data,
    ));
    assert!(e.contains("rope_freqs") && e.contains("llama3"), "{e}");
    // linear scaling from the keys, and no rope tensor
    let linear = tiny_llama()
        .without_tensor("rope_freqs.weight")
        .set("llama.rope.scaling.type", MetadataValue::String("linear".into()))
        .set("llama.rope.scaling.factor", MetadataValue::F32(2.0));
    assert_eq!(
        load(&linear).unwrap().hf_config()["rope_scaling"],
        serde_json::json!({"rope_type": "linear", "factor": 2.0})
    );
    assert_eq!(
        load(&tiny_llama().without_tensor("rope_freqs.weight")).unwrap().hf_config()
            ["rope_scaling"],
        Value::Null
    );
}

#[test]
fn a_folder_holding_one_gguf_resolves_to_it() {
    init();
    let dir = std::env::temp_dir().join(format!("petune-gguf-dir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    assert!(resolve_gguf_path(&dir).unwrap_err().to_string().contains("no .gguf"));
    assert!(!is_gguf_path(&dir));
    std::fs::copy(gguf_fixture("tok-gpt2.gguf"), dir.join("a.gguf")).unwrap();
    assert_eq!(resolve_gguf_path(&dir).unwrap(), dir.join("a.gguf"));
    assert!(is_gguf_path(&dir) && is_gguf_path(dir.join("a.gguf")));
    assert!(
        !is_gguf_path(gguf_fixture("tiny-llama")) && !is_gguf_path(gguf_fixture("tokens.json"))
    );
    std::fs::copy(gguf_fixture("tok-gpt2.gguf"), dir.join("b.GGUF")).unwrap();
    let e = resolve_gguf_path(&dir).unwrap_err().to_string();
    assert!(e.contains("2 .gguf files") && e.contains("a.gguf"), "{e}");
    assert!(resolve_gguf_path(dir.join("nope")).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
    // a file without tensors is not a llama model: a typed error, not a panic
    let e = GgufModel::open(gguf_fixture("tok-gpt2.gguf")).unwrap_err().to_string();
    assert!(e.contains("block_count"), "{e}");
}
