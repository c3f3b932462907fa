# Dropgate's words for buyers, in English. Every key here exists in every language file
# (a test checks it). Variables: see each message; mail messages receive the template
# placeholders ({{store_name}}) as variables of the same name.

## Dates

month-1 = January
month-2 = February
month-3 = March
month-4 = April
month-5 = May
month-6 = June
month-7 = July
month-8 = August
month-9 = September
month-10 = October
month-11 = November
month-12 = December
date = { $day } { $month } { $year }
date-time = { $date }, { $time }
# $zone: the time zone's abbreviation and name, "CET, Europe/Berlin".
date-time-zone = { $date }, { $time } ({ $zone })
relative-in-days = { $n ->
    [one] in one day
   *[other] in { $n } days
}
relative-in-hours = { $n ->
    [one] in one hour
   *[other] in { $n } hours
}
relative-in-minutes = { $n ->
    [one] in one minute
   *[other] in { $n } minutes
}
relative-days-ago = { $n ->
    [one] one day ago
   *[other] { $n } days ago
}
relative-hours-ago = { $n ->
    [one] one hour ago
   *[other] { $n } hours ago
}
relative-just-now = just now
times-in-zone = Times are shown in { $zone }.

## The download page

download-until = You can download until { $date }.
download-no-expiry = Your downloads do not expire.
download-file = Download { $name }
downloads-left = { $left } of { $max } downloads left
downloads-unlimited = unlimited downloads
file-updated = Updated on { $date }
download-resume = A download that breaks off can be resumed: only what arrives counts.
lost-link = Lost this link?
get-new-links = Get new links by email
link-invalid-title = This download link is not valid
link-invalid-body = Check that you copied the whole link from your email. If the seller sent you a newer link, the older one no longer works.
refused-on-hold = This order is on hold. The seller will release it; you do not need to do anything.
refused-cancelled = This order was cancelled, so it has no downloads.
refused-unconfirmed = The payment for this order is not confirmed yet. Try again once you have the confirmation.
refused-refunded = This order was refunded, so its downloads have ended.
refused-revoked = This download link is no longer valid. Ask the seller for a new one.
refused-blocked = This link was used from a second country and has been blocked to protect your purchase. Contact the seller to unblock it.
refused-expired = The download period for this link ended on { $date }.
refused-limit = { $max ->
    [one] This link has been used for its one download.
   *[other] This link has been used for all of its { $max } downloads.
}
page-error = Something went wrong on our side. Please try again in a few minutes.

## The self-service page

resend-title = Get new download links
resend-intro = Enter the email address you bought with. We send new links for every purchase that can still be downloaded to that address.
email-label = Email address
order-label = Order ID
optional = (optional)
order-hint = Only for one purchase: the 7-digit number in your order mail.
honeypot-label = Leave this empty
resend-submit = Send me new links
resend-sent = If there are purchases for that address, we have sent new links to it. Check your inbox (and the spam folder) in a few minutes. The links you had before no longer work.
resend-error-email = That does not look like an email address. Check it and try again.
resend-error-order = An order ID is the 7-digit number in your order mail. Check it, or leave the field empty to get links for all your purchases.
resend-error-quick = That was quicker than we expected from a person. Please wait a moment and send the form again.
resend-error-stale = This page was open for a long time. Please send the form again.
resend-error-busy = Too many requests for now. Please try again in an hour.
library-ask-title = See all your purchases
library-ask-intro = We email you a sign-in link to a page that lists everything you bought with this address. The link works once, within 30 minutes.
library-ask-submit = Email me a sign-in link
library-sent = If there are purchases for that address, we have sent a sign-in link to it. Check your inbox (and the spam folder) in a few minutes.

## The buyer library

library-title = Your purchases
library-signed-in = Signed in as { $email }
library-sign-out = Sign out
library-order = Order { $order } of { $date }
library-open = Open downloads
library-open-note = Opening makes a fresh link for that purchase; the link in your earlier mail stops working.
library-none = There are no purchases for this address.
library-signin-title = Open your purchases
library-signin-body = This sign-in link works once. Press the button to see everything you bought.
library-signin-submit = Show my purchases
library-signin-invalid = This sign-in link has been used or has expired. Ask for a new one below.
library-ended = Your session has ended. Ask for a new sign-in link below.
library-files = { $n ->
    [one] one file
   *[other] { $n } files
}

## Mails

mail-greeting = Hello,
mail-greeting-named = Hello { $name },
mail-downloads = { $n ->
    [0] unlimited downloads
    [one] 1 download
   *[other] { $n } downloads
}
mail-terms-until = { $downloads }, until { $date }
mail-terms-no-expiry = { $downloads }, no expiry
mail-purchase-subject = Your download from { $store_name }
mail-purchase-intro = thank you for your purchase (order { $order_id }). Your downloads:
mail-purchase-outro = Keep this mail: the links are yours. Lost it? Ask for new links at { $resend_url }
mail-resend-subject = Your new download link from { $store_name }
mail-resend-intro = here is a new link for your purchase (order { $order_id }). The link you had before no longer works.
mail-resend-outro = Lost it again? Ask for new links at { $resend_url }
mail-new-password-subject = Your download from { $store_name }
mail-new-password-intro = { $store_name } sent you a download:
mail-new-password-outro = Lost this mail? Ask for new links at { $resend_url }
mail-self-service-subject = Your download links from { $store_name }
mail-self-service-intro = you asked for new links to your purchases. The links you had before no longer work.
mail-self-service-outro = Did not ask for this? Your downloads are safe: only this mailbox received the new links.
mail-product-update-subject = New version of { $products } from { $store_name }
mail-product-update-intro = there is a new version of { $products }, which you bought from { $store_name }.

    { $message }

    Download it with your new link:
mail-product-update-outro = The links you had before no longer work; these do. Lost this mail? Ask for new links at { $resend_url }
mail-library-sign-in-subject = Sign in to your purchases at { $store_name }
mail-library-sign-in-intro = you asked to see your purchases at { $store_name }. Open this link within 30 minutes; it works once:

    { $sign_in_url }
mail-library-sign-in-outro = Did not ask for this? Ignore this mail; nothing happens without the link.
mail-test-subject = Test mail from { $store_name }
mail-test-intro = this is a test mail from Dropgate. If you can read it, buyers receive their links.
mail-vendor-notice-subject = New order { $order_id } from { $buyer_email }
mail-vendor-notice-intro = a new order was confirmed.

    Order ID: { $order_id }
    Order number: { $order_number }
    Transaction ID: { $transaction_id }
    Buyer: { $buyer_name } <{ $buyer_email }>

    The buyer's downloads and passwords:
mail-vendor-notice-outro = Find this order in the password desk by its order ID, order number or password.
