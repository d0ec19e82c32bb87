//! How the end of a run becomes an exit status: a closed pipe (`podtracer … | head`) is a
//! normal end, not a failure.

use std::process::ExitCode;

/// Whether the error, or any of its causes, is a write to a pipe whose reader has gone.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<snoopy_capture::Error>()
                .is_some_and(snoopy_capture::Error::is_broken_pipe)
    })
}

/// The exit status of a run whose output ended with `outcome`: success, also when the
/// reader closed the pipe; any other error is returned.
pub fn status(outcome: anyhow::Result<()>) -> anyhow::Result<ExitCode> {
    match outcome {
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_anywhere_in_the_chain_is_success() {
        let closed = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("writing stdout");
        assert!(is_broken_pipe(&closed));
        assert_eq!(status(Err(closed)).ok(), Some(ExitCode::SUCCESS));
        let other = anyhow::anyhow!("no such pod");
        assert!(!is_broken_pipe(&other));
        assert!(status(Err(other)).is_err());
    }
}
