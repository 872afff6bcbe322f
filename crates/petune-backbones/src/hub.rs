//! Model folders from the Hugging Face Hub, behind the cargo feature `hub`: a model id
//! (`roberta-large`, `FacebookAI/roberta-large`) where a folder is expected is fetched
//! with `hf-hub` into the Hub cache (`$HF_HOME/hub`, shared with Python) and answered
//! with the cached snapshot folder. Only the files petune reads are fetched:
//! `config.json`, `model.safetensors`, and `tokenizer.json` or, when a repository has
//! none, `vocab.json` + `merges.txt` (byte-level BPE) or `vocab.txt` (WordPiece).

use std::path::{Path, PathBuf};

use petune_core::{Error, Result};

/// True when `arg` can be a Hub model id rather than a local path: one or two
/// `/`-separated names of letters, digits, `-`, `_` and `.`, not starting with `.`.
pub fn looks_like_model_id(arg: &Path) -> bool {
    let Some(s) = arg.to_str() else { return false };
    let parts: Vec<&str> = s.split('/').collect();
    !s.is_empty()
        && parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
}

/// Fetches `id`'s files (module docs) and returns the snapshot folder.
#[cfg(feature = "hub")]
pub fn fetch_model(id: &str) -> Result<PathBuf> {
    let hub_error = |file: &str, e: hf_hub::api::sync::ApiError| {
        Error::input(format!("Hugging Face Hub: {id}/{file}: {e}"))
    };
    let api = hf_hub::api::sync::Api::new().map_err(|e| hub_error("", e))?;
    let repo = api.model(id.to_string());
    let config = repo.get("config.json").map_err(|e| hub_error("config.json", e))?;
    repo.get("model.safetensors").map_err(|e| hub_error("model.safetensors", e))?;
    if repo.get("tokenizer.json").is_err() {
        let bpe = repo.get("vocab.json").and_then(|_| repo.get("merges.txt"));
        if bpe.is_err() {
            repo.get("vocab.txt").map_err(|e| hub_error("tokenizer.json / vocab.txt", e))?;
        }
    }
    config
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| Error::input(format!("Hugging Face Hub: no folder for {id}")))
}

/// Without the `hub` feature a model id is an error that says how to enable it.
#[cfg(not(feature = "hub"))]
pub fn fetch_model(id: &str) -> Result<PathBuf> {
    Err(Error::input(format!(
        "{id} is not a local model folder; to download it from the Hugging Face Hub build petune with `--features hub`"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_paths_are_told_apart() {
        for id in
            ["roberta-large", "FacebookAI/roberta-large", "sentence-transformers/all-MiniLM-L6-v2"]
        {
            assert!(looks_like_model_id(Path::new(id)), "{id}");
        }
        for path in ["", "./model", "/abs/model", "a/b/c", "../x", "with space"] {
            assert!(!looks_like_model_id(Path::new(path)), "{path}");
        }
    }

    #[cfg(not(feature = "hub"))]
    #[test]
    fn without_the_feature_an_id_says_how_to_enable_it() {
        let e = fetch_model("roberta-large").unwrap_err().to_string();
        assert!(e.contains("--features hub"), "{e}");
    }
}
