//! Tokenization through the `tokenizers` crate from a checkpoint's `tokenizer.json`
//! or, for byte-level BPE models without one, from `vocab.json` + `merges.txt` (built
//! as transformers' `convert_slow_tokenizer` GPT-2 / RoBERTa / DeBERTa converters do),
//! with petune (not the file) in charge of padding and truncation.
//!
//! Files such as all-MiniLM-L6-v2's pad and truncate to 128 by themselves; both
//! settings are switched off on load, so batches are padded to their longest
//! example and an over-long input is an error unless truncation is asked for.

use std::path::{Path, PathBuf};

use petune_core::{BackboneSpec, Error, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{AddedToken, EncodeInput, Tokenizer, TruncationParams, TruncationStrategy};

use crate::family::Family;

/// One example: a text, optionally with a second segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextInput {
    /// First segment.
    pub text: String,
    /// Second segment (NLI, paraphrase tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_pair: Option<String>,
}

impl TextInput {
    /// A single-segment input.
    pub fn single(text: impl Into<String>) -> Self {
        TextInput { text: text.into(), text_pair: None }
    }

    /// A two-segment input.
    pub fn pair(text: impl Into<String>, pair: impl Into<String>) -> Self {
        TextInput { text: text.into(), text_pair: Some(pair.into()) }
    }
}

/// Which side padding goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaddingSide {
    /// Pad at the end (encoders).
    #[default]
    Right,
    /// Pad at the start (decoders generating after the text).
    Left,
}

/// How to encode a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Longest allowed input in tokens (special tokens included).
    pub max_len: usize,
    /// Cut over-long inputs (longest segment first) instead of failing.
    pub truncate: bool,
    /// Padding side.
    pub padding_side: PaddingSide,
}

/// A padded batch.
///
/// # Shapes
/// All tensors `[B, T]` int64, `T` = the longest example.
#[derive(Debug)]
pub struct EncodedBatch {
    /// Token ids.
    pub input_ids: Tensor,
    /// 1 = token, 0 = padding.
    pub attention_mask: Tensor,
    /// Segment ids.
    pub token_type_ids: Tensor,
    /// Unpadded length of each example.
    pub lengths: Vec<i64>,
}

/// A `tokenizer.json` with padding and truncation under petune's control.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    path: PathBuf,
    pad_id: i64,
    /// `(bos, eos)` ids of the model (its config.json), when known.
    specials: (Option<i64>, Option<i64>),
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("path", &self.path)
            .field("pad_id", &self.pad_id)
            .finish()
    }
}

impl TextTokenizer {
    /// Loads `path`, switching off the file's own padding and truncation.
    pub fn from_file(path: &Path, pad_id: i64) -> Result<TextTokenizer> {
        let err = |msg: String| Error::Tokenizer { path: path.to_path_buf(), msg };
        if !path.is_file() {
            return Err(err("file not found".into()));
        }
        let mut inner = Tokenizer::from_file(path).map_err(|e| err(e.to_string()))?;
        inner.with_padding(None);
        inner.with_truncation(None).map_err(|e| err(e.to_string()))?;
        Ok(TextTokenizer { inner, path: path.to_path_buf(), pad_id, specials: (None, None) })
    }

    /// Wraps a tokenizer built in code (e.g. from a GGUF file's metadata, [`crate::gguf`]),
    /// switching off its padding and truncation; `source` is the file it describes.
    pub fn from_tokenizer(
        mut inner: Tokenizer,
        source: &Path,
        pad_id: i64,
    ) -> Result<TextTokenizer> {
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer { path: source.to_path_buf(), msg: e.to_string() })?;
        Ok(TextTokenizer { inner, path: source.to_path_buf(), pad_id, specials: (None, None) })
    }

    /// Builds a byte-level BPE tokenizer from `vocab.json` and `merges.txt`, with the
    /// special tokens and post-processing of `family`:
    ///
    /// * `Gpt2`: no special tokens added to encodings (`A`, pair `A B` with segment 1 on
    ///   `B`, as transformers' tokenizer.json for GPT-2 writes); `<|endoftext|>` stays
    ///   one token when it appears in the text.
    /// * `Deberta`: `[CLS] A [SEP]` / `[CLS] A [SEP] B [SEP]` (segments 0 / 1), the
    ///   special tokens `[PAD] [CLS] [SEP] [UNK] [MASK]` found in the vocabulary,
    ///   `[MASK]` absorbing the space before it (`lstrip`), as DeBERTa v1's tokenizer.json.
    /// * `Roberta`: `<s> A </s>` / `<s> A </s></s> B </s>`, `<mask>` with `lstrip`.
    ///
    /// `Bert` (WordPiece) is [`Error::Unsupported`]: use its `tokenizer.json`.
    /// GPT-2 has no padding token; callers pass the spec's `pad_id` (0, see
    /// `gpt2` module docs).
    pub fn from_vocab_merges(
        vocab: &Path,
        merges: &Path,
        family: Family,
        pad_id: i64,
    ) -> Result<TextTokenizer> {
        let err = |msg: String| Error::Tokenizer { path: vocab.to_path_buf(), msg };
        for f in [vocab, merges] {
            if !f.is_file() {
                return Err(Error::Tokenizer {
                    path: f.to_path_buf(),
                    msg: "file not found".into(),
                });
            }
        }
        let utf8 = |f: &Path| {
            f.to_str().map(str::to_string).ok_or_else(|| Error::Tokenizer {
                path: f.to_path_buf(),
                msg: "path is not valid UTF-8".into(),
            })
        };
        let bpe = BPE::from_file(&utf8(vocab)?, &utf8(merges)?)
            .build()
            .map_err(|e| err(format!("with {}: {e}", merges.display())))?;
        let mut inner = Tokenizer::new(bpe);
        // GPT-2's byte-level pre-tokenizer: no prefix space, its split regex.
        inner.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        inner.with_decoder(Some(ByteLevel::default()));
        // (token, lstrip) of the family's special tokens, in the order HF lists them.
        let specials: &[(&str, bool)] = match family {
            Family::Gpt2 => &[("<|endoftext|>", false)],
            Family::Deberta => &[
                ("[PAD]", false),
                ("[CLS]", false),
                ("[SEP]", false),
                ("[UNK]", false),
                ("[MASK]", true),
            ],
            Family::Roberta => &[
                ("<s>", false),
                ("<pad>", false),
                ("</s>", false),
                ("<unk>", false),
                ("<mask>", true),
            ],
            Family::Bert => {
                return Err(Error::Unsupported {
                    what: "vocab.json + merges.txt for bert".into(),
                    msg: "BERT uses WordPiece: load its tokenizer.json".into(),
                })
            }
            other => {
                return Err(Error::Unsupported {
                    what: format!("vocab.json + merges.txt for {}", other.model_type()),
                    msg: "the Llama family's special tokens and pre-tokenizer live in its \
                          tokenizer.json: load that"
                        .into(),
                })
            }
        };
        let id_of = |t: &Tokenizer, tok: &str| {
            t.token_to_id(tok)
                .ok_or_else(|| err(format!("special token `{tok}` is not in the vocabulary")))
        };
        let post: PostProcessorWrapper = match family {
            Family::Deberta => {
                let (cls, sep) = (id_of(&inner, "[CLS]")?, id_of(&inner, "[SEP]")?);
                let mut b = TemplateProcessing::builder();
                b.try_single("[CLS]:0 $A:0 [SEP]:0").map_err(err)?;
                b.try_pair("[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1").map_err(err)?;
                b.special_tokens(vec![("[CLS]", cls), ("[SEP]", sep)]);
                b.build().map_err(|e| err(e.to_string()))?.into()
            }
            Family::Roberta => {
                let (cls, sep) = (id_of(&inner, "<s>")?, id_of(&inner, "</s>")?);
                RobertaProcessing::new(("</s>".into(), sep), ("<s>".into(), cls))
                    .trim_offsets(true)
                    .add_prefix_space(false)
                    .into()
            }
            _ => {
                let mut b = TemplateProcessing::builder();
                b.try_single("$A:0").map_err(err)?;
                b.try_pair("$A:0 $B:1").map_err(err)?;
                b.build().map_err(|e| err(e.to_string()))?.into()
            }
        };
        inner.with_post_processor(Some(post));
        // Only the specials the vocabulary has (a GPT-2 vocabulary may lack the rest).
        let added: Vec<AddedToken> = specials
            .iter()
            .filter(|(tok, _)| inner.token_to_id(tok).is_some())
            .map(|&(tok, lstrip)| AddedToken::from(tok, true).lstrip(lstrip).normalized(false))
            .collect();
        inner.add_special_tokens(added).map_err(|e| err(e.to_string()))?;
        Ok(TextTokenizer { inner, path: vocab.to_path_buf(), pad_id, specials: (None, None) })
    }

    /// Records the model's beginning- and end-of-sequence ids (what its config.json
    /// says), for callers that build sequences by hand (LM scoring).
    pub fn with_specials(mut self, bos: Option<i64>, eos: Option<i64>) -> TextTokenizer {
        self.specials = (bos, eos);
        self
    }

    /// The model's beginning-of-sequence id, when known.
    pub fn bos_id(&self) -> Option<i64> {
        self.specials.0
    }

    /// The model's end-of-sequence id, when known.
    pub fn eos_id(&self) -> Option<i64> {
        self.specials.1
    }

    /// The tokenizer of a Hugging Face folder: `tokenizer.json` when present, else
    /// `vocab.json` + `merges.txt` ([`TextTokenizer::from_vocab_merges`] for the spec's
    /// family); padding with the spec's `pad_id`, and the spec's bos / eos ids.
    pub fn from_model_dir(dir: impl AsRef<Path>, spec: &BackboneSpec) -> Result<TextTokenizer> {
        let dir = dir.as_ref();
        let json = dir.join("tokenizer.json");
        let with = |t: TextTokenizer| t.with_specials(spec.bos_id, spec.eos_id);
        if json.is_file() {
            return Self::from_file(&json, spec.pad_id).map(with);
        }
        let (vocab, merges) = (dir.join("vocab.json"), dir.join("merges.txt"));
        if vocab.is_file() && merges.is_file() {
            let family = Family::from_model_type(&spec.model_type)?;
            return Self::from_vocab_merges(&vocab, &merges, family, spec.pad_id).map(with);
        }
        Err(Error::Tokenizer {
            path: dir.to_path_buf(),
            msg: "the folder has neither tokenizer.json nor vocab.json + merges.txt".into(),
        })
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The padding id.
    pub fn pad_id(&self) -> i64 {
        self.pad_id
    }

    /// Vocabulary size, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Id of an exact token string (e.g. `[MASK]`, `<mask>`, `Ġgreat`).
    pub fn token_id(&self, token: &str) -> Option<i64> {
        self.inner.token_to_id(token).map(i64::from)
    }

    /// Token string of an id.
    pub fn token(&self, id: i64) -> Option<String> {
        u32::try_from(id).ok().and_then(|id| self.inner.id_to_token(id))
    }

    /// The ids of `text` without special tokens (label words, templates).
    pub fn ids_without_special(&self, text: &str) -> Result<Vec<i64>> {
        let enc = self.inner.encode(text, false).map_err(|e| self.error(e.to_string()))?;
        Ok(enc.get_ids().iter().map(|&i| i64::from(i)).collect())
    }

    /// Decodes ids to text.
    pub fn decode(&self, ids: &[i64]) -> Result<String> {
        let ids: Vec<u32> = ids.iter().filter_map(|&i| u32::try_from(i).ok()).collect();
        self.inner.decode(&ids, true).map_err(|e| self.error(e.to_string()))
    }

    fn error(&self, msg: String) -> Error {
        Error::Tokenizer { path: self.path.clone(), msg }
    }

    fn encode_one(
        &self,
        input: &TextInput,
        truncate_to: Option<usize>,
    ) -> Result<tokenizers::Encoding> {
        let enc_input: EncodeInput = match &input.text_pair {
            Some(pair) => (input.text.as_str(), pair.as_str()).into(),
            None => input.text.as_str().into(),
        };
        match truncate_to {
            None => self.inner.encode(enc_input, true),
            Some(max_length) => {
                let mut t = self.inner.clone();
                let params = TruncationParams {
                    max_length,
                    strategy: TruncationStrategy::LongestFirst,
                    ..Default::default()
                };
                t.with_truncation(Some(params)).map_err(|e| self.error(e.to_string()))?;
                t.encode(enc_input, true)
            }
        }
        .map_err(|e| self.error(e.to_string()))
    }

    /// Ids and segment ids of one input, special tokens included. Longer than `max_len`
    /// is an [`Error::Input`] unless `truncate` (longest segment first).
    pub fn encode_ids(
        &self,
        input: &TextInput,
        max_len: usize,
        truncate: bool,
    ) -> Result<(Vec<i64>, Vec<i64>)> {
        let mut enc = self.encode_one(input, None)?;
        if enc.len() > max_len {
            if !truncate {
                return Err(Error::input(format!(
                    "input of {} tokens is longer than the limit of {max_len}; shorten it or enable truncation",
                    enc.len()
                )));
            }
            enc = self.encode_one(input, Some(max_len))?;
        }
        let ids = enc.get_ids().iter().map(|&i| i64::from(i)).collect();
        let types = enc.get_type_ids().iter().map(|&i| i64::from(i)).collect();
        Ok((ids, types))
    }

    /// Encodes and pads a batch onto `device`.
    ///
    /// An empty batch, or an input longer than `opts.max_len` without `opts.truncate`,
    /// is an [`Error::Input`] naming the example.
    pub fn encode_batch(
        &self,
        inputs: &[TextInput],
        opts: &EncodeOptions,
        device: Device,
    ) -> Result<EncodedBatch> {
        if inputs.is_empty() {
            return Err(Error::input("cannot encode an empty batch"));
        }
        let mut encodings = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.iter().enumerate() {
            let mut enc = self.encode_one(input, None)?;
            if enc.len() > opts.max_len {
                if !opts.truncate {
                    return Err(Error::input(format!(
                        "example {i} has {} tokens, more than the limit of {}; shorten it or enable truncation",
                        enc.len(),
                        opts.max_len
                    )));
                }
                enc = self.encode_one(input, Some(opts.max_len))?;
            }
            encodings.push(enc);
        }
        let t = encodings.iter().map(|e| e.len()).max().unwrap_or(0);
        let b = encodings.len();
        let mut ids = vec![self.pad_id; b * t];
        let mut mask = vec![0i64; b * t];
        let mut types = vec![0i64; b * t];
        let mut lengths = Vec::with_capacity(b);
        for (row, enc) in encodings.iter().enumerate() {
            let n = enc.len();
            let start = match opts.padding_side {
                PaddingSide::Right => 0,
                PaddingSide::Left => t - n,
            };
            for (j, ((&id, &ty), _)) in
                enc.get_ids().iter().zip(enc.get_type_ids()).zip(0..n).enumerate()
            {
                let at = row * t + start + j;
                ids[at] = i64::from(id);
                types[at] = i64::from(ty);
                mask[at] = 1;
            }
            lengths.push(n as i64);
        }
        let shape = [b as i64, t as i64];
        let to =
            |v: Vec<i64>| Tensor::from_slice(&v).view(shape).to_device(device).to_kind(Kind::Int64);
        Ok(EncodedBatch {
            input_ids: to(ids),
            attention_mask: to(mask),
            token_type_ids: to(types),
            lengths,
        })
    }
}
