"""WeChat Work (企业微信): callback endpoint, API client, channel."""
