//! `petune sweep` on the tiny BERT: prompt layers × seeds through `petune train`
//! children, a CSV row per run, PNG and SVG plots of the prompt-layer curve and of the
//! convergence curves.

mod common;

use std::process::Command;

use common::tiny_task::*;
use common::*;
use petune::prelude::*;

#[test]
fn sweep_writes_csv_and_plots() {
    init();
    let dir = temp_dir("cli-sweep");
    let cfg = jsonl_run_config(&dir, MethodConfig::Lpt(LptConfig::npg(2)), 8, 3);
    std::fs::write(dir.join("run.json"), serde_json::to_string(&cfg).unwrap()).unwrap();
    let out = dir.join("sweep");
    let status = Command::new(env!("CARGO_BIN_EXE_petune"))
        .args(["sweep", "--prompt-layers", "1,2", "--seeds", "1,2", "--config"])
        .arg(dir.join("run.json"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 5, "{csv}");
    assert!(rows[0].starts_with("method,prompt_layer,seed,test"));
    for stem in ["prompt_layers", "convergence"] {
        let png = std::fs::read(out.join(format!("{stem}.png"))).unwrap();
        assert_eq!(&png[1..4], b"PNG", "{stem}.png");
        let svg = std::fs::read_to_string(out.join(format!("{stem}.svg"))).unwrap();
        assert!(svg.contains("<svg") && svg.contains("<polyline"), "{stem}.svg");
    }
}
