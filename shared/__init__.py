"""What the add-on and the backend share: data types, formats, the wire protocol and its client."""
