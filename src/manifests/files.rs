//! Manifest files found and read: files and directories, each bounded in size, each document
//! parsed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{Document, MAX_FILE_BYTES, Problem, Unreadable, parse_documents};

/// Every `.yaml`/`.yml` file under the given paths (directories recursively, sorted), in order,
/// each once: a file reached again (named twice, or through a symbolic link) is not read twice,
/// and a link back to a directory already walked is not followed (it would never end).
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Unreadable> {
    let mut files = Vec::new();
    let mut seen_files = BTreeSet::new();
    let mut walked_dirs = BTreeSet::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| Unreadable {
            file: path.display().to_string(),
            message: e.to_string(),
        })?;
        let mut found = Vec::new();
        if meta.is_dir() {
            walk_dir(path, &mut walked_dirs, &mut found)?;
            found.sort();
        } else {
            found.push(path.clone());
        }
        for file in found {
            // A path that cannot be resolved is kept as it is: reading it reports why.
            let identity = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
            if seen_files.insert(identity) {
                files.push(file);
            }
        }
    }
    Ok(files)
}

fn walk_dir(dir: &Path, walked: &mut BTreeSet<PathBuf>, found: &mut Vec<PathBuf>) -> Result<(), Unreadable> {
    let unreadable = |e: std::io::Error| Unreadable {
        file: dir.display().to_string(),
        message: e.to_string(),
    };
    if !walked.insert(std::fs::canonicalize(dir).map_err(unreadable)?) {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        // Follows links: a link to a directory is walked (once), a link to a file is a file.
        let is_dir = std::fs::metadata(&path).is_ok_and(|m| m.is_dir());
        if is_dir {
            walk_dir(&path, walked, found)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            found.push(path);
        }
    }
    Ok(())
}

/// Reads the documents of the files. Unreadable files stop everything; YAML that does not parse
/// is a problem of that file.
pub fn load(files: &[PathBuf]) -> Result<(Vec<Document>, Vec<Problem>), Unreadable> {
    let mut documents = Vec::new();
    let mut problems = Vec::new();
    for path in files {
        let file = path.display().to_string();
        let bytes = read_manifest(path).map_err(|message| Unreadable {
            file: file.clone(),
            message,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| Unreadable {
            file: file.clone(),
            message: "not UTF-8 text".into(),
        })?;
        parse_documents(&file, &text, &mut documents, &mut problems);
    }
    Ok((documents, problems))
}

/// The bytes of a regular file of at most MAX_FILE_BYTES. A named pipe, a device or a socket is
/// refused without reading from it (a FIFO would block forever, /dev/zero never ends), and the
/// limit holds while reading, so a file that grows, or lies about its size, cannot make the
/// process allocate more than the limit.
fn read_manifest(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Opening a FIFO for reading blocks until a writer comes: not with O_NONBLOCK.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(format!(
            "not a regular file ({}): only regular files are read",
            file_kind(&meta)
        ));
    }
    let too_big =
        |size: u64| format!("{size} bytes is larger than the {MAX_FILE_BYTES} bytes a manifest file may have");
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a named pipe";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() { "a directory" } else { "not a file" }
}
