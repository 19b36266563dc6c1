"""The mitmproxy addons: hooks only, thin; they ask policy what to do and transfer/storage to do it."""
