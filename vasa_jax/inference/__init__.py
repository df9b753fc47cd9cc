"""Generation: a face photo and speech into a talking-face video (`talking_face`), offline or
streamed, with its parts (`portrait`: the photo; `audio`: streamed features; `motion`: stage 2 window
after window; `face`: stage 1 rendering), editing with a driving video (`editing`), the command line
(`cli`) and the speed benchmark (`bench`)."""
