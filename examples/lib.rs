//! Examples of the custody SDK; see the `[[example]]` targets.
