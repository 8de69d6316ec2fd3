"""What a Lead run's signals note as news: once per receipt and message, and nothing that
would reopen a lead that is closing."""

from __future__ import annotations

from models.values import Channel, Stage
from workflows.lead_news import SEEN_RECEIPTS_WINDOW, LeadNews
from workflows.payloads import CallsExhausted, ConsentChanged, PaymentReceived, ReplyReceived


def test_a_repeat_submission_or_reply_is_noted_once() -> None:
    news = LeadNews(receipt_id="rcpt_first", carry=None)
    news.intake("rcpt_first")  # the one that started the lead
    news.intake("rcpt_2")
    news.intake("rcpt_2")
    reply = ReplyReceived(message_id="msg_1", channel=Channel.SMS)
    news.reply(reply)
    news.reply(reply)
    assert news.pending == ["rcpt_2"] and news.replies == [reply]

    news.pending.pop(0)
    news.handled("rcpt_2")
    news.intake("rcpt_2")  # a replayed webhook after it was handled
    assert news.pending == [] and news.any()


def test_the_window_keeps_the_last_ids_handled() -> None:
    news = LeadNews(receipt_id="rcpt_first", carry=None)
    for n in range(SEEN_RECEIPTS_WINDOW + 5):
        news.handled(f"msg_{n}")
    assert len(news.seen) == SEEN_RECEIPTS_WINDOW
    assert news.seen[-1] == f"msg_{SEEN_RECEIPTS_WINDOW + 4}"


def test_the_first_conversion_counts_and_a_closing_lead_takes_none() -> None:
    news = LeadNews(receipt_id="rcpt_first", carry=None)
    news.payment(PaymentReceived(payment_id="pay_1", status="failed"))
    assert news.conversion is None and not news.any()
    news.booking()
    news.payment(PaymentReceived(payment_id="pay_2", status="paid"))
    assert news.conversion == "booked"

    closing = LeadNews(receipt_id="rcpt_first", carry=None)
    closing.closing = True
    closing.payment(PaymentReceived(payment_id="pay_3", status="paid"))
    closing.consent(ConsentChanged(channel=Channel.SMS, granted=False, opted_out_everywhere=True))
    closing.calls_unanswered(CallsExhausted(attempts=3, escalation_id="esc_1"))
    assert not closing.any()


def test_unanswered_calls_are_news_once_and_only_before_the_lead_engaged() -> None:
    news = LeadNews(receipt_id="rcpt_first", carry=None)
    news.calls_unanswered(CallsExhausted(attempts=3, escalation_id="esc_1"))
    assert news.unanswered_calls(Stage.CONTACTED) == "3 calls unanswered (escalation esc_1)"
    assert news.unanswered_calls(Stage.CONTACTED) is None

    news.calls_unanswered(CallsExhausted(attempts=3, escalation_id="esc_2"))
    assert news.unanswered_calls(Stage.ENGAGED) is None
    assert not news.any()
