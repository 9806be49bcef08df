//! The seed walkthroughs (`../shared/seeds/*.md`) as a user copying from them gets them: fenced
//! blocks with their list indentation removed, and the Ratify resource YAML of `cat <<EOF`
//! heredocs.

/// Fenced code blocks of a markdown document, with the fence's indentation (list nesting)
/// removed from every line.
pub fn code_blocks(md: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, Vec<String>)> = None;
    for line in md.lines() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim_start();
        match &mut current {
            None if t.starts_with("```") => current = Some((indent, Vec::new())),
            Some((_, lines)) if t.starts_with("```") => {
                blocks.push(lines.join("\n") + "\n");
                current = None;
            }
            Some((ind, lines)) => {
                let cut = line.chars().take(*ind).take_while(|c| *c == ' ').count();
                lines.push(line[cut..].to_string());
            }
            None => {}
        }
    }
    blocks
}

/// Ratify resource YAML in the seed: heredoc bodies of shell blocks, and yaml blocks.
pub fn resource_blocks(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    for block in code_blocks(md) {
        let body = match block.find("<<EOF") {
            Some(start) => {
                let after = &block[start..];
                let first_nl = after.find('\n').unwrap_or(after.len());
                let body = &after[first_nl + 1..];
                let end = body.find("\nEOF").map(|e| e + 1).unwrap_or(body.len());
                body[..end].to_string()
            }
            None => block,
        };
        if body.contains("apiVersion: config.ratify.deislabs.io") {
            out.push(body);
        }
    }
    out
}
