//! The tokenizer a GGUF file describes in its metadata, built as a `tokenizers::Tokenizer` and
//! wrapped in [`TextTokenizer`].
//!
//! Supported: `tokenizer.ggml.model = gpt2` (byte-level BPE), built as transformers 5.24 builds
//! it from a GGUF (`integrations/gguf/gguf_tokenizer_mapping.py`: `byte_level_tokenizer`,
//! `add_gguf_special_tokens`, `set_split_regex`; `TokenizersBackend.update_post_processor`):
//!
//! * vocabulary `tokenizer.ggml.tokens` (a token not spelt in GPT-2's byte alphabet is respelt
//!   from its UTF-8 bytes), merges `tokenizer.ggml.merges` (`"a b"`);
//! * tokens of type CONTROL (3) that are spelt in the byte alphabet become special added tokens,
//!   USER_DEFINED (4) ones plain added tokens, so both stay whole in text;
//! * `tokenizer.ggml.add_bos_token` / `add_eos_token` (default false) add BOS / EOS around each
//!   segment, as transformers' template does;
//! * the split rule named by `tokenizer.ggml.pre`: GPT-2's byte-level regex (`gpt-2`, `mpt`,
//!   `olmo`, `jais`), digits split one by one before it (`smollm` and the other names llama.cpp
//!   gives that rule, `llama-vocab.cpp`; on SmolLM2 this equals transformers' ids), or the
//!   Llama-3, Qwen2 and GPT-4o regexes of transformers' table. Another name is
//!   [`Error::Unsupported`]: a wrong split rule would silently change the ids.
//! * `tokenizer.ggml.add_space_prefix = true` puts a space before the text (GPT-2 rule only;
//!   transformers and llama.cpp ignore the flag for byte-level BPE, petune follows the file).
//!
//! `tokenizer.ggml.model = llama` (SentencePiece) and the others are [`Error::Unsupported`].

use std::collections::HashMap;
use std::path::Path;

use petune_core::{Error, Result};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use super::metadata::Metadata;
use crate::tokenizer::TextTokenizer;

/// GGUF token types (llama.cpp's `llama_token_type`).
const CONTROL: i128 = 3;
const USER_DEFINED: i128 = 4;

/// transformers' `_LLAMA3_SPLIT`.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// transformers' Qwen2 `PRETOKENIZE_REGEX`.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// transformers' `_GPT4O_SPLIT`.
const GPT4O_SPLIT: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
);

/// How text is split before BPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SplitRule {
    /// GPT-2's regex inside the byte-level pre-tokenizer.
    Gpt2,
    /// Each digit on its own, then GPT-2's regex (llama.cpp's `\p{N}` rule).
    DigitsThenGpt2,
    /// One regex, then byte-level without its own regex.
    Regex(&'static str),
}

/// `tokenizer.ggml.pre` names and their rules.
const SPLIT_RULES: &[(&str, SplitRule)] = &[
    ("gpt-2", SplitRule::Gpt2),
    ("mpt", SplitRule::Gpt2),
    ("olmo", SplitRule::Gpt2),
    ("jais", SplitRule::Gpt2),
    ("smollm", SplitRule::DigitsThenGpt2),
    ("starcoder", SplitRule::DigitsThenGpt2),
    ("refact", SplitRule::DigitsThenGpt2),
    ("command-r", SplitRule::DigitsThenGpt2),
    ("codeshell", SplitRule::DigitsThenGpt2),
    ("exaone", SplitRule::DigitsThenGpt2),
    ("minerva-7b", SplitRule::DigitsThenGpt2),
    ("llama3", SplitRule::Regex(LLAMA3_SPLIT)),
    ("llama-v3", SplitRule::Regex(LLAMA3_SPLIT)),
    ("llama-bpe", SplitRule::Regex(LLAMA3_SPLIT)),
    ("falcon3", SplitRule::Regex(LLAMA3_SPLIT)),
    ("falcon-h1", SplitRule::Regex(LLAMA3_SPLIT)),
    ("pixtral", SplitRule::Regex(LLAMA3_SPLIT)),
    ("midm-2.0", SplitRule::Regex(LLAMA3_SPLIT)),
    ("lfm2", SplitRule::Regex(LLAMA3_SPLIT)),
    ("jina-v5-nano", SplitRule::Regex(LLAMA3_SPLIT)),
    ("dbrx", SplitRule::Regex(LLAMA3_SPLIT)),
    ("smaug-bpe", SplitRule::Regex(LLAMA3_SPLIT)),
    ("qwen2", SplitRule::Regex(QWEN2_SPLIT)),
    ("deepseek-r1-qwen", SplitRule::Regex(QWEN2_SPLIT)),
    ("kormo", SplitRule::Regex(QWEN2_SPLIT)),
    ("f2llmv2", SplitRule::Regex(QWEN2_SPLIT)),
    ("megrez", SplitRule::Regex(QWEN2_SPLIT)),
    ("gpt-4o", SplitRule::Regex(GPT4O_SPLIT)),
    ("llama4", SplitRule::Regex(GPT4O_SPLIT)),
    ("kanana2", SplitRule::Regex(GPT4O_SPLIT)),
    ("talkie", SplitRule::Regex(GPT4O_SPLIT)),
    ("minimax-m2", SplitRule::Regex(GPT4O_SPLIT)),
];

/// GPT-2's `bytes_to_unicode`: the printable character standing for each byte.
fn byte_alphabet() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut extra = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        out[b as usize] = if printable {
            char::from(b)
        } else {
            extra += 1;
            char::from_u32(255 + extra).unwrap_or('\0')
        };
    }
    out
}

/// The special-token ids a GGUF names (`tokenizer.ggml.*_token_id`), checked against the vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpecialIds {
    /// Beginning of sequence.
    pub bos: Option<u32>,
    /// End of sequence.
    pub eos: Option<u32>,
    /// Padding.
    pub pad: Option<u32>,
    /// Unknown.
    pub unk: Option<u32>,
}

impl SpecialIds {
    /// Reads the ids; one outside a vocabulary of `vocab` tokens is an error.
    pub fn read(meta: &Metadata, path: &Path, vocab: usize) -> Result<SpecialIds> {
        let id = |name: &str| -> Result<Option<u32>> {
            let key = format!("tokenizer.ggml.{name}_token_id");
            match meta.opt_u64(&key)? {
                None => Ok(None),
                Some(i) if (i as usize) < vocab => Ok(Some(i as u32)),
                Some(i) => Err(tokenizer_error(
                    path,
                    format!("`{key}` is {i}, outside the vocabulary of {vocab} tokens"),
                )),
            }
        };
        Ok(SpecialIds {
            bos: id("bos")?,
            eos: id("eos")?,
            pad: id("padding")?,
            unk: id("unknown")?,
        })
    }
}

fn tokenizer_error(path: &Path, msg: String) -> Error {
    Error::Tokenizer { path: path.to_path_buf(), msg }
}

/// The tokenizer of a GGUF file's metadata; `path` names the file in errors and in
/// [`TextTokenizer::path`]. Padding uses `tokenizer.ggml.padding_token_id`, else EOS, else 0.
pub fn gguf_tokenizer(meta: &Metadata, path: &Path) -> Result<TextTokenizer> {
    let err = |msg: String| tokenizer_error(path, msg);
    let model = meta
        .opt_str("tokenizer.ggml.model")?
        .ok_or_else(|| err("no `tokenizer.ggml.model` in the metadata".into()))?;
    match model {
        "gpt2" => {}
        "llama" => {
            return Err(Error::Unsupported {
                what: "GGUF tokenizer `llama` (SentencePiece)".into(),
                msg: format!(
                    "{}: petune builds byte-level BPE (`gpt2`) GGUF tokenizers only",
                    path.display()
                ),
            })
        }
        other => {
            return Err(Error::Unsupported {
                what: format!("GGUF tokenizer `{other}`"),
                msg: format!(
                    "{}: petune builds byte-level BPE (`gpt2`) GGUF tokenizers only",
                    path.display()
                ),
            })
        }
    }
    let tokens = meta
        .opt_str_array("tokenizer.ggml.tokens")?
        .ok_or_else(|| err("no `tokenizer.ggml.tokens`".into()))?;
    let merges = meta
        .opt_str_array("tokenizer.ggml.merges")?
        .ok_or_else(|| err("no `tokenizer.ggml.merges`".into()))?;
    let types = meta.opt_int_array("tokenizer.ggml.token_type")?.unwrap_or_default();
    if !types.is_empty() && types.len() != tokens.len() {
        return Err(err(format!("{} token types for {} tokens", types.len(), tokens.len())));
    }
    if tokens.is_empty() || tokens.len() > u32::MAX as usize {
        return Err(err(format!("a vocabulary of {} tokens", tokens.len())));
    }
    let ids = SpecialIds::read(meta, path, tokens.len())?;

    let alphabet = byte_alphabet();
    let spelt = |t: &str| t.chars().all(|c| alphabet.contains(&c));
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let key = if spelt(t) {
                t.to_string()
            } else {
                t.bytes().map(|b| alphabet[b as usize]).collect()
            };
            (key, i as u32)
        })
        .collect();
    let merges = merges
        .iter()
        .enumerate()
        .map(|(i, m)| match m.split(' ').collect::<Vec<_>>()[..] {
            [a, b] if !a.is_empty() && !b.is_empty() => Ok((a.to_string(), b.to_string())),
            _ => Err(err(format!("merge #{i} `{m}` is not two tokens separated by one space"))),
        })
        .collect::<Result<Vec<_>>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .continuing_subword_prefix(String::new())
        .end_of_word_suffix(String::new())
        .build()
        .map_err(|e| err(format!("BPE: {e}")))?;

    let mut inner = Tokenizer::new(bpe);
    let add_prefix_space = meta.opt_bool("tokenizer.ggml.add_space_prefix")?.unwrap_or(false);
    inner.with_pre_tokenizer(Some(pre_tokenizer(meta, path, add_prefix_space)?));
    inner.with_decoder(Some(ByteLevelDecoder::default()));

    let add_bos = meta.opt_bool("tokenizer.ggml.add_bos_token")?.unwrap_or(false);
    let add_eos = meta.opt_bool("tokenizer.ggml.add_eos_token")?.unwrap_or(false);
    let bos = if add_bos { Some(special(&tokens, ids.bos, "bos", path)?) } else { None };
    let eos = if add_eos { Some(special(&tokens, ids.eos, "eos", path)?) } else { None };
    inner.with_post_processor(Some(template(bos, eos).map_err(err)?));

    // The tokens of GGUF type `kind`, as added tokens (special or not) that stay whole in text.
    let added = |kind: i128, special: bool| -> Vec<AddedToken> {
        tokens
            .iter()
            .enumerate()
            .filter(|&(i, t)| types.get(i) == Some(&kind) && spelt(t))
            .map(|(_, t)| AddedToken::from(t.to_string(), special).normalized(false))
            .collect()
    };
    inner.add_special_tokens(added(CONTROL, true)).map_err(|e| err(e.to_string()))?;
    inner.add_tokens(added(USER_DEFINED, false)).map_err(|e| err(e.to_string()))?;

    let pad = ids.pad.or(ids.eos).unwrap_or(0);
    TextTokenizer::from_tokenizer(inner, path, i64::from(pad))
}

/// The chat template of the file (`tokenizer.chat_template`), if any.
pub fn chat_template(meta: &Metadata) -> Result<Option<String>> {
    Ok(meta.opt_str("tokenizer.chat_template")?.map(str::to_string))
}

/// `(token, id)` of special token `name`, which `add_<name>_token` needs.
fn special(tokens: &[&str], id: Option<u32>, name: &str, path: &Path) -> Result<(String, u32)> {
    let id = id.ok_or_else(|| {
        tokenizer_error(
            path,
            format!("`tokenizer.ggml.add_{name}_token` is set but `{name}_token_id` is missing"),
        )
    })?;
    Ok((tokens[id as usize].to_string(), id))
}

/// `[bos] $A [eos]`, pair `[bos] $A [eos] [bos] $B [eos]` (segment 1 on B), as transformers.
fn template(
    bos: Option<(String, u32)>,
    eos: Option<(String, u32)>,
) -> std::result::Result<TemplateProcessing, String> {
    let piece = |t: &Option<(String, u32)>, seg: u8| t.as_ref().map(|(s, _)| format!("{s}:{seg}"));
    let single: Vec<String> =
        [piece(&bos, 0), Some("$A:0".into()), piece(&eos, 0)].into_iter().flatten().collect();
    let pair: Vec<String> = single
        .iter()
        .cloned()
        .chain([piece(&bos, 1), Some("$B:1".into()), piece(&eos, 1)].into_iter().flatten())
        .collect();
    let specials: HashMap<String, u32> = bos.into_iter().chain(eos).collect();
    let mut b = TemplateProcessing::builder();
    b.try_single(single.join(" "))?;
    b.try_pair(pair.join(" "))?;
    b.special_tokens(specials.into_iter().collect::<Vec<_>>());
    b.build().map_err(|e| e.to_string())
}

fn pre_tokenizer(
    meta: &Metadata,
    path: &Path,
    add_prefix_space: bool,
) -> Result<PreTokenizerWrapper> {
    let pre = meta.opt_str("tokenizer.ggml.pre")?.unwrap_or("gpt-2");
    let rule =
        SPLIT_RULES.iter().find(|(name, _)| *name == pre).map(|&(_, rule)| rule).ok_or_else(
            || Error::Unsupported {
                what: format!("GGUF split rule `tokenizer.ggml.pre = {pre}`"),
                msg: format!(
                    "{}: petune knows {}",
                    path.display(),
                    SPLIT_RULES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                ),
            },
        )?;
    if add_prefix_space && rule != SplitRule::Gpt2 {
        return Err(Error::Unsupported {
            what: "`tokenizer.ggml.add_space_prefix = true` with a split rule other than GPT-2's"
                .into(),
            msg: format!("{}: split rule `{pre}`", path.display()),
        });
    }
    let split = |pattern: &str| {
        Split::new(
            SplitPattern::Regex(pattern.to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| tokenizer_error(path, format!("split rule `{pre}`: {e}")))
    };
    Ok(match rule {
        SplitRule::Gpt2 => ByteLevel::new(add_prefix_space, true, true).into(),
        SplitRule::DigitsThenGpt2 => {
            Sequence::new(vec![split(r"\p{N}")?.into(), ByteLevel::new(false, true, true).into()])
                .into()
        }
        SplitRule::Regex(pattern) => {
            Sequence::new(vec![split(pattern)?.into(), ByteLevel::new(false, true, false).into()])
                .into()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_alphabet_matches_gpt2() {
        let a = byte_alphabet();
        assert_eq!(a[b'A' as usize], 'A');
        assert_eq!(a[b' ' as usize], 'Ġ');
        assert_eq!(a[b'\n' as usize], 'Ċ');
        assert_eq!(a[0], 'Ā');
        let mut sorted = a.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 256);
    }

    #[test]
    fn every_split_rule_compiles() {
        for pattern in [LLAMA3_SPLIT, QWEN2_SPLIT, GPT4O_SPLIT, r"\p{N}"] {
            Split::new(
                SplitPattern::Regex(pattern.into()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .unwrap();
        }
    }
}
