"""The interfaces: the command line, the HTTP API and the web pages, each a thin layer over the
service. None of them imports another; `site` puts the API and the pages on one application and
`hosting` serves it."""
