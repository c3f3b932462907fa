# Dropgate's words for buyers, in German. Keys as in en.ftl.

## Dates

month-1 = Januar
month-2 = Februar
month-3 = März
month-4 = April
month-5 = Mai
month-6 = Juni
month-7 = Juli
month-8 = August
month-9 = September
month-10 = Oktober
month-11 = November
month-12 = Dezember
date = { $day }. { $month } { $year }
date-time = { $date }, { $time } Uhr
date-time-zone = { $date }, { $time } Uhr ({ $zone })
relative-in-days = { $n ->
    [one] in einem Tag
   *[other] in { $n } Tagen
}
relative-in-hours = { $n ->
    [one] in einer Stunde
   *[other] in { $n } Stunden
}
relative-in-minutes = { $n ->
    [one] in einer Minute
   *[other] in { $n } Minuten
}
relative-days-ago = { $n ->
    [one] vor einem Tag
   *[other] vor { $n } Tagen
}
relative-hours-ago = { $n ->
    [one] vor einer Stunde
   *[other] vor { $n } Stunden
}
relative-just-now = gerade eben
times-in-zone = Zeiten in { $zone }.

## The download page

download-until = Sie können bis { $date } herunterladen.
download-no-expiry = Ihre Downloads laufen nicht ab.
download-file = { $name } herunterladen
downloads-left = noch { $left } von { $max } Downloads
downloads-unlimited = unbegrenzte Downloads
file-updated = Aktualisiert am { $date }
download-resume = Ein abgebrochener Download kann fortgesetzt werden: Es zählt nur, was ankommt.
lost-link = Link verloren?
get-new-links = Neue Links per E-Mail anfordern
link-invalid-title = Dieser Download-Link ist nicht gültig
link-invalid-body = Prüfen Sie, ob Sie den ganzen Link aus Ihrer E-Mail kopiert haben. Wenn der Verkäufer Ihnen einen neueren Link geschickt hat, funktioniert der ältere nicht mehr.
refused-on-hold = Diese Bestellung ist angehalten. Der Verkäufer gibt sie frei; Sie müssen nichts tun.
refused-cancelled = Diese Bestellung wurde storniert und hat daher keine Downloads.
refused-unconfirmed = Die Zahlung für diese Bestellung ist noch nicht bestätigt. Versuchen Sie es erneut, sobald Sie die Bestätigung haben.
refused-refunded = Diese Bestellung wurde erstattet, ihre Downloads sind daher beendet.
refused-revoked = Dieser Download-Link ist nicht mehr gültig. Bitten Sie den Verkäufer um einen neuen.
refused-blocked = Dieser Link wurde aus einem zweiten Land benutzt und zum Schutz Ihres Kaufs gesperrt. Wenden Sie sich an den Verkäufer, um ihn freizugeben.
refused-expired = Der Download-Zeitraum für diesen Link endete am { $date }.
refused-limit = { $max ->
    [one] Dieser Link wurde für seinen einen Download benutzt.
   *[other] Dieser Link wurde für alle seine { $max } Downloads benutzt.
}
page-error = Bei uns ist etwas schiefgegangen. Bitte versuchen Sie es in ein paar Minuten erneut.

## The self-service page

resend-title = Neue Download-Links anfordern
resend-intro = Geben Sie die E-Mail-Adresse ein, mit der Sie gekauft haben. Wir senden an diese Adresse neue Links für jeden Kauf, der noch heruntergeladen werden kann.
email-label = E-Mail-Adresse
order-label = Bestellnummer
optional = (optional)
order-hint = Nur für einen Kauf: die 7-stellige Nummer in Ihrer Bestellbestätigung.
honeypot-label = Dieses Feld leer lassen
resend-submit = Neue Links senden
resend-sent = Wenn es Käufe mit dieser Adresse gibt, haben wir neue Links dorthin gesendet. Sehen Sie in ein paar Minuten in Ihren Posteingang (und in den Spam-Ordner). Die bisherigen Links funktionieren nicht mehr.
resend-error-email = Das sieht nicht wie eine E-Mail-Adresse aus. Prüfen Sie sie und versuchen Sie es erneut.
resend-error-order = Die Bestellnummer ist die 7-stellige Nummer in Ihrer Bestellbestätigung. Prüfen Sie sie, oder lassen Sie das Feld leer, um Links für alle Ihre Käufe zu erhalten.
resend-error-quick = Das ging schneller, als ein Mensch es schafft. Bitte warten Sie einen Moment und senden Sie das Formular erneut.
resend-error-stale = Diese Seite war lange geöffnet. Bitte senden Sie das Formular erneut.
resend-error-busy = Zu viele Anfragen. Bitte versuchen Sie es in einer Stunde erneut.
library-ask-title = Alle Ihre Käufe ansehen
library-ask-intro = Wir senden Ihnen einen Anmeldelink zu einer Seite mit allem, was Sie mit dieser Adresse gekauft haben. Der Link funktioniert einmal, innerhalb von 30 Minuten.
library-ask-submit = Anmeldelink senden
library-sent = Wenn es Käufe mit dieser Adresse gibt, haben wir einen Anmeldelink dorthin gesendet. Sehen Sie in ein paar Minuten in Ihren Posteingang (und in den Spam-Ordner).

## The buyer library

library-title = Ihre Käufe
library-signed-in = Angemeldet als { $email }
library-sign-out = Abmelden
library-order = Bestellung { $order } vom { $date }
library-open = Downloads öffnen
library-open-note = Beim Öffnen entsteht ein neuer Link für diesen Kauf; der Link in Ihrer früheren E-Mail funktioniert dann nicht mehr.
library-none = Für diese Adresse gibt es keine Käufe.
library-signin-title = Ihre Käufe öffnen
library-signin-body = Dieser Anmeldelink funktioniert einmal. Klicken Sie auf die Schaltfläche, um alles zu sehen, was Sie gekauft haben.
library-signin-submit = Meine Käufe anzeigen
library-signin-invalid = Dieser Anmeldelink wurde schon benutzt oder ist abgelaufen. Fordern Sie unten einen neuen an.
library-ended = Ihre Sitzung ist beendet. Fordern Sie unten einen neuen Anmeldelink an.
library-files = { $n ->
    [one] eine Datei
   *[other] { $n } Dateien
}

## Mails

mail-greeting = Hallo,
mail-greeting-named = Hallo { $name },
mail-downloads = { $n ->
    [0] unbegrenzte Downloads
    [one] 1 Download
   *[other] { $n } Downloads
}
mail-terms-until = { $downloads }, bis { $date }
mail-terms-no-expiry = { $downloads }, ohne Ablaufdatum
mail-purchase-subject = Ihr Download von { $store_name }
mail-purchase-intro = vielen Dank für Ihren Kauf (Bestellung { $order_id }). Ihre Downloads:
mail-purchase-outro = Bewahren Sie diese E-Mail auf: Die Links gehören Ihnen. Verloren? Neue Links gibt es unter { $resend_url }
mail-resend-subject = Ihr neuer Download-Link von { $store_name }
mail-resend-intro = hier ist ein neuer Link für Ihren Kauf (Bestellung { $order_id }). Der bisherige Link funktioniert nicht mehr.
mail-resend-outro = Wieder verloren? Neue Links gibt es unter { $resend_url }
mail-new-password-subject = Ihr Download von { $store_name }
mail-new-password-intro = { $store_name } hat Ihnen einen Download geschickt:
mail-new-password-outro = E-Mail verloren? Neue Links gibt es unter { $resend_url }
mail-self-service-subject = Ihre Download-Links von { $store_name }
mail-self-service-intro = Sie haben neue Links zu Ihren Käufen angefordert. Die bisherigen Links funktionieren nicht mehr.
mail-self-service-outro = Nicht angefordert? Ihre Downloads sind sicher: Nur dieses Postfach hat die neuen Links erhalten.
mail-product-update-subject = Neue Version von { $products } bei { $store_name }
mail-product-update-intro = es gibt eine neue Version von { $products }, das Sie bei { $store_name } gekauft haben.

    { $message }

    Laden Sie sie mit Ihrem neuen Link herunter:
mail-product-update-outro = Die bisherigen Links funktionieren nicht mehr; diese schon. E-Mail verloren? Neue Links gibt es unter { $resend_url }
mail-library-sign-in-subject = Anmeldung zu Ihren Käufen bei { $store_name }
mail-library-sign-in-intro = Sie möchten Ihre Käufe bei { $store_name } sehen. Öffnen Sie diesen Link innerhalb von 30 Minuten; er funktioniert einmal:

    { $sign_in_url }
mail-library-sign-in-outro = Nicht angefordert? Ignorieren Sie diese E-Mail; ohne den Link geschieht nichts.
mail-test-subject = Testnachricht von { $store_name }
mail-test-intro = dies ist eine Testnachricht von Dropgate. Wenn Sie sie lesen können, erhalten Käufer ihre Links.
mail-vendor-notice-subject = Neue Bestellung { $order_id } von { $buyer_email }
mail-vendor-notice-intro = eine neue Bestellung wurde bestätigt.

    Bestellnummer: { $order_id }
    Bestellkennung: { $order_number }
    Transaktions-ID: { $transaction_id }
    Käufer: { $buyer_name } <{ $buyer_email }>

    Die Downloads und Passwörter des Käufers:
mail-vendor-notice-outro = Sie finden diese Bestellung im Passwort-Schalter über Bestellnummer, Bestellkennung oder Passwort.
