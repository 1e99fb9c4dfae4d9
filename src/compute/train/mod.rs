//! PLACEHOLDER (to be written): gradient descent on one dense layer (API.md, POST /train).
