//! Filter expressions on the command line: compiling the trailing words, showing errors with
//! a caret under the column, and printing programs like `tcpdump -d`/`-dd`/`-ddd`.

use anyhow::{Result, anyhow};
use snoopy_capture::LinkType;
use snoopy_capture::filter::{Mode, Program, Resolve, compile_words_with};

/// The filter for `words` (joined by spaces, as tcpdump does), or `None` without words;
/// host, Ethernet host and network names are looked up through `names`.
pub fn compile(
    words: &[String],
    link: LinkType,
    mode: Mode,
    snaplen: u32,
    names: &dyn Resolve,
) -> Result<Option<Program>> {
    if words.is_empty() {
        return Ok(None);
    }
    let expr = words.join(" ");
    compile_words_with(words, link, mode, snaplen, names)
        .map(Some)
        .map_err(|e| match e.pointer(&expr) {
            Some(caret) => anyhow!("bad filter expression: {}\n{caret}", e.message),
            None => anyhow!("bad filter expression {expr:?}: {}", e.message),
        })
}

/// The program as `tcpdump -d` (1), `-dd` (2) or `-ddd` (3 or more) prints it.
pub fn listing(program: &Program, level: u8) -> String {
    match level {
        0 | 1 => program.disassemble(),
        2 => {
            let mut out = String::new();
            for i in &program.instructions {
                out.push_str(&format!(
                    "{{ 0x{:x}, {}, {}, 0x{:08x} }},\n",
                    i.code, i.jt, i.jf, i.k
                ));
            }
            out
        }
        _ => program.to_ddd(),
    }
}
